"""Regulatory evidence end to end on a small simulated lending world: a credit model trained
with the spec's design, a day scored by the real scoring asset, then the evidence assets and
the model card.

The world is 45 days of 1,500 loans; 12-month labels cannot mature in it, so the training
labels are drawn (seeded) from the simulator's true 12-month PD of each loan-day — a trained
credit model of the real features, not a production-quality one. Slow: about a minute.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from dagster import DagsterInstance, materialize
from scipy.stats import spearmanr

from lakehouse.features.views import build_feature_batch
from lakehouse.sources.contract import evaluation_path
from models.card.publish import CARD_TAG, record_approval, write_card
from models.evidence.lime import row_seed, top_features
from models.evidence.record import explanation_agreement
from models.lifecycle.registry import CHAMPION, ModelRegistry, RunContext
from models.training.params import TrainingParams
from models.training.train import train
from models.usecase import UseCase
from orchestration.evidence.assets import evidence_assets
from orchestration.resources import (
    STEP_IO,
    FeatureStoreResource,
    LakehouseResource,
    ModelRegistryResource,
    StepOutputIOManager,
)
from orchestration.scoring.assets import scoring_assets
from tests.credit_world import credit, lending_world

pytestmark = pytest.mark.slow
DAYS, LOANS, SAMPLE = 45, 1500, 300
PARAMS = TrainingParams(nthread=1, num_boost_round=60, min_rows=500)


class World:
    def __init__(self, root: Path) -> None:
        base = credit()
        assert base.explanations is not None
        self.use_case: UseCase = replace(
            base, explanations=replace(base.explanations, sample_size=SAMPLE)
        )
        self.root = root
        self.config, self.lake = lending_world(root, loans=LOANS, days=DAYS, seed=9)
        self.day = self.config.date_of(DAYS - 1)
        self.registry = ModelRegistry(self.use_case.model_name)

    def resources(self) -> dict[str, object]:
        uri = str(self.lake.uri)
        return {
            "lakehouse": LakehouseResource(uri=uri),
            "feature_store": FeatureStoreResource(lakehouse_uri=uri),
            "model_registry": ModelRegistryResource(),
            STEP_IO: StepOutputIOManager(),
        }

    def build(self) -> None:
        uc = self.use_case
        days = [self.config.date_of(d) for d in range(35, DAYS)]
        batch = build_feature_batch(
            uc.features.builder,
            self.lake,
            days,
            uc.features.views,
            uc.features.ratios,
            uc.entity.join_key,
            created_at=datetime.now(UTC),
        )
        for table, frame in batch.tables.items():
            self.lake.replace(table, frame, partition={"feature_date": days})
        self.lake.replace(uc.tables.training_set, self._training_set(batch.tables, days[:-1]))
        FeatureStoreResource(lakehouse_uri=str(self.lake.uri)).apply()
        table = uc.tables.training_set
        model = train(self.lake.read(table), uc.design, PARAMS)
        context = RunContext(
            training_set_version=self.lake.version(table) or 0,
            feature_service=uc.features.service,
            use_case=uc.name,
        )
        version = self.registry.log_training_run(model, uc.encoding, context).version
        self.registry.set_alias(CHAMPION, version)
        self.version = version
        self._materialize(scoring_assets(uc))

    def _training_set(self, tables: dict[str, pl.DataFrame], days: list) -> pl.DataFrame:
        """Feature rows of ``days`` as of the next day, labelled from the true 12-month PD."""
        uc, key = self.use_case, self.use_case.entity.join_key
        frames = [f.drop("event_timestamp", "created_timestamp") for f in tables.values()]
        joined = frames[0]
        for other in frames[1:]:
            joined = joined.join(other, on=[key, "feature_date"])
        joined = joined.filter(pl.col("feature_date").is_in(days))
        truth = pl.concat(
            pl.read_parquet(evaluation_path(self.root / "landing", "credit_truth", d)) for d in days
        ).select(key, pl.col("as_of_date").alias("feature_date"), "pd_12m")
        rows = joined.join(truth, on=[key, "feature_date"]).sort("feature_date", key)
        draws = np.random.default_rng(4).random(rows.height) < rows["pd_12m"].to_numpy()
        spec = uc.table_spec(uc.tables.training_set)
        return rows.with_columns(
            (pl.col("feature_date") + timedelta(days=1)).alias("as_of_date"),
            pl.col("feature_date")
            .add(timedelta(days=1))
            .cast(pl.Datetime("us", "UTC"))
            .alias("event_timestamp"),
            pl.Series(uc.label.definition.column, draws.astype(np.int64)),
        ).select([pl.col(c).cast(t) for c, t in spec.schema.items()])

    def _materialize(self, assets: list) -> None:
        result = materialize(
            assets,
            resources=self.resources(),
            instance=DagsterInstance.ephemeral(),
            partition_key=self.day.isoformat(),
        )
        assert result.success

    def evidence(self) -> None:
        self._materialize(evidence_assets(self.use_case))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("evidence")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SCOREHOUSE_HOME", str(root / "home"))
        built = World(root)
        built.build()
        built.evidence()
        yield built


@pytest.fixture(autouse=True)
def _world_home(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCOREHOUSE_HOME", str(world.root / "home"))


def test_lime_agreement_is_recorded_and_recomputes_with_scipy(world: World) -> None:
    uc, key = world.use_case, world.use_case.entity.join_key
    tables = uc.tables.evidence
    summary = world.lake.read(tables.agreement).row(0, named=True)
    run = world.lake.read(uc.tables.scoring.scoring_runs).row(0, named=True)
    assert summary["scoring_run_id"] == run["scoring_run_id"]
    assert summary["explained"] == SAMPLE == len(summary["sample_ids"])
    assert summary["model_version"] == world.version and summary["seed"] == 7
    lime = world.lake.read(tables.lime).sort(key)
    assert lime[key].to_list() == sorted(summary["sample_ids"])
    assert lime["row_seed"].to_list() == [row_seed(7, e) for e in lime[key]]
    # The recorded SHAP of those rows, from the scoring run (the system of record).
    shap = (
        world.lake.read(uc.tables.scoring.explanations)
        .join(lime.select(key), on=key, how="semi")
        .sort(key)
        .select(uc.tables.scoring.shap_columns)
        .to_numpy()
    )
    weights = lime.select(tables.lime_weight_columns).to_numpy()
    top = top_features(shap, summary["top_k"])
    reference = []
    for i in range(len(shap)):
        rho = spearmanr(np.abs(shap[i, top[i]]), np.abs(weights[i, top[i]])).statistic
        reference.append(rho)
    reference = np.array(reference)
    np.testing.assert_allclose(lime["spearman"].to_numpy(), reference, atol=1e-12)
    assert summary["mean_spearman"] == pytest.approx(np.nanmean(reference), abs=1e-12)
    signs = np.sign(np.take_along_axis(shap, top, 1)) == np.sign(
        np.take_along_axis(weights, top, 1)
    )
    assert summary["sign_agreement"] == pytest.approx(signs.mean(), abs=1e-12)
    # LIME and SHAP broadly agree on a real credit model.
    assert summary["mean_spearman"] > 0.6 and summary["sign_agreement"] > 0.85
    assert summary["alert"] == (summary["mean_spearman"] < 0.5)


def test_the_recorded_sample_recomputes_exactly(world: World) -> None:
    uc = world.use_case
    recorded = world.lake.read(uc.tables.evidence.lime).sort(uc.entity.join_key)
    run = world.lake.read(uc.tables.scoring.scoring_runs).row(0, named=True)
    again = explanation_agreement(world.lake, world.registry, uc, run)
    columns = uc.tables.evidence.lime_weight_columns
    np.testing.assert_array_equal(
        again.rows.select(columns).to_numpy(), recorded.select(columns).to_numpy()
    )


def test_fairness_is_recorded_per_group_from_silver(world: World) -> None:
    uc, key = world.use_case, world.use_case.entity.join_key
    found = world.lake.read(uc.tables.evidence.fairness)
    assert set(found["attribute"]) == {"age_band", "sex"}
    assert set(found.filter(pl.col("attribute") == "sex")["group"]) == {"female", "male"}
    predictions = world.lake.read(uc.tables.scoring.predictions)
    # Reference by hand: the applicant's sex through loans → applications.
    sex = (
        world.lake.read("silver.loans")
        .select(key, "application_id")
        .join(world.lake.read("silver.loan_applications"), on="application_id")
        .select(key, "sex")
    )
    joined = predictions.join(sex, on=key)
    for group in ("female", "male"):
        rows = joined.filter(pl.col("sex") == group)
        approved = (~rows["risk_band"].is_in(["D", "E"])).mean()
        row = found.filter(pl.col("group") == group).row(0, named=True)
        assert row["rows"] == rows.height
        assert row["approval_rate"] == pytest.approx(approved)
        assert row["mean_pd"] == pytest.approx(rows["score"].mean())
        assert row["observed_default_rate"] is None  # nothing matured in a 45-day world
    assert found["rows"].sum() == 2 * predictions.height


def test_the_model_card_has_every_section_and_no_external_url(world: World) -> None:
    record_approval(world.registry, world.version, "model_risk", "A. Reviewer", "pilot only")
    out = world.root / "card"
    files = write_card(world.registry, world.lake, world.use_case, world.version, out)
    html = files.html.read_text()
    for section in (
        "purpose",
        "data",
        "features",
        "performance",
        "calibration",
        "stability",
        "explainability",
        "fairness",
        "limitations",
        "promotion",
        "approvals",
    ):
        assert f'<section id="{section}">' in html, section
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", html)
    assert "http://" not in html and "https://" not in html
    images = re.findall(r'<img [^>]*src="([^"]+)"', html)
    assert images and all(i.startswith("data:image/png;base64,") for i in images)
    assert "SHAP–LIME agreement per scoring run" in html
    assert "No matured vintage yet" in html
    assert "A. Reviewer" in html and "pilot only" in html
    tags = world.registry.version(world.version).tags
    assert tags[CARD_TAG] == files.artifact_uri
    run_id = world.registry.version(world.version).run_id
    logged = {a.path for a in world.registry.client.list_artifacts(run_id, "model_card")}
    assert logged == {"model_card/model_card.html", "model_card/model_card.md"}
