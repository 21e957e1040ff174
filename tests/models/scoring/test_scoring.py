"""Batch scoring: population, exact SHAP, reasons, audit columns, re-runs, online serving."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import numpy as np
import polars as pl
import xgboost as xgb

from models.scoring.runs import current_predictions
from tests.scored_world import ScoredWorld, train_and_register
from tests.world import churn

CHURN = churn()
TABLES = CHURN.tables.scoring
PREDICTIONS, EXPLANATIONS, RUNS = TABLES.predictions, TABLES.explanations, TABLES.scoring_runs


def _day_rows(world: ScoredWorld, table: str, index: int = 0) -> pl.DataFrame:
    return world.lake.read(table, where=pl.col("as_of_date") == world.days[index])


def test_every_active_customer_is_scored_once(scored_world: ScoredWorld) -> None:
    world = scored_world
    for index, day in enumerate(world.days):
        active = world.lake.read(
            CHURN.features.population_table, where=pl.col("feature_date") == day
        )
        scored = _day_rows(world, PREDICTIONS, index)
        assert sorted(scored["customer_id"].to_list()) == sorted(active["customer_id"].to_list())
        assert scored["prediction_id"].is_unique().all()


def test_audit_columns_trace_model_data_and_run(scored_world: ScoredWorld) -> None:
    world = scored_world
    rows = _day_rows(world, PREDICTIONS)
    run = world.lake.read(RUNS, where=pl.col("as_of_date") == world.days[0]).row(0, named=True)
    assert set(rows["model_version"]) == {world.champion}
    assert set(rows["model_alias"]) == {"champion"}
    assert set(rows["scoring_run_id"]) == {run["scoring_run_id"]}
    assert set(rows["dagster_run_id"]) == {run["dagster_run_id"]}
    versions = json.loads(rows["source_versions"][0])
    for name, version in versions.items():
        assert world.lake.version(name) >= version
    booster = world.registry.load_booster(world.champion)
    import hashlib

    assert set(rows["model_sha256"]) == {
        hashlib.sha256(bytes(booster.save_raw("json"))).hexdigest()
    }
    assert rows["risk_band"].is_in(["low", "medium", "high"]).all()


def test_shap_is_exact_and_additive(scored_world: ScoredWorld) -> None:
    world = scored_world
    predictions = _day_rows(world, PREDICTIONS).sort("prediction_id")
    explanations = _day_rows(world, EXPLANATIONS).sort("prediction_id")
    booster = world.registry.load_booster(world.champion)
    names = CHURN.encoding.names
    shap = explanations.select([f"shap__{n}" for n in names]).to_numpy()
    margin = np.log(predictions["score"] / (1 - predictions["score"])).to_numpy()
    total = shap.sum(axis=1) + explanations["base_value"].to_numpy()
    assert np.abs(total - margin).max() < 1e-5
    # Against xgboost's own pred_contribs on the stored feature rows.
    from feature_repo.config import feature_store

    store = feature_store(world.lake.uri, pins=json.loads(predictions["source_versions"][0]))
    entities = predictions.select("customer_id", "event_timestamp").to_pandas()
    rows = pl.from_arrow(
        store.get_historical_features(
            entity_df=entities, features=store.get_feature_service("churn_v1")
        ).to_arrow()
    )
    contribs = booster.predict(
        xgb.DMatrix(CHURN.encoding.matrix(rows), feature_names=names), pred_contribs=True
    )
    assert np.abs(contribs[:, :-1] - shap).max() < 1e-5
    assert np.abs(contribs[:, -1] - explanations["base_value"].to_numpy()).max() < 1e-5


def test_reason_codes_are_the_top_positive_contributions(scored_world: ScoredWorld) -> None:
    world = scored_world
    predictions = _day_rows(world, PREDICTIONS).sort("prediction_id")
    explanations = _day_rows(world, EXPLANATIONS).sort("prediction_id")
    catalogue = CHURN.reasons
    names = CHURN.encoding.names
    for prediction, explanation in zip(
        predictions.head(30).iter_rows(named=True),
        explanations.head(30).iter_rows(named=True),
        strict=True,
    ):
        ranked = sorted(
            ((explanation[f"shap__{n}"], n) for n in names if explanation[f"shap__{n}"] > 0),
            key=lambda item: (-item[0], item[1]),
        )[:3]
        assert prediction["reason_features"] == [n for _, n in ranked]
        assert prediction["reason_codes"] == [catalogue[n].code for _, n in ranked]
        assert prediction["reason_contributions"] == [v for v, _ in ranked]


def test_rerun_supersedes_without_erasing(scored_world: ScoredWorld) -> None:
    world = scored_world
    day = world.days[0]
    before = _day_rows(world, PREDICTIONS)
    world.score(day)
    after = _day_rows(world, PREDICTIONS)
    assert after.height == 2 * before.height
    runs = world.lake.read(RUNS, where=pl.col("as_of_date") == day).sort("finished_at")
    assert runs.height == 2
    current = current_predictions(world.lake, TABLES).filter(pl.col("as_of_date") == day).collect()
    assert current.height == before.height
    assert set(current["scoring_run_id"]) == {runs["scoring_run_id"][-1]}
    assert current.sort("customer_id")["score"].equals(before.sort("customer_id")["score"])


def test_latest_score_and_reasons_are_served_online(scored_world: ScoredWorld) -> None:
    from feature_repo.config import feature_store

    world = scored_world
    latest = _day_rows(world, PREDICTIONS, 1).sort("customer_id").head(5)
    online = (
        feature_store(world.lake.uri)
        .get_online_features(
            features=[
                "churn_prediction:score",
                "churn_prediction:risk_band",
                "churn_prediction:reason_codes",
                "churn_prediction:model_version",
            ],
            entity_rows=[{"customer_id": c} for c in latest["customer_id"]],
        )
        .to_dict()
    )
    assert online["score"] == latest["score"].to_list()
    assert online["risk_band"] == latest["risk_band"].to_list()
    assert online["reason_codes"] == latest["reason_codes"].to_list()
    assert online["model_version"] == latest["model_version"].to_list()


def test_shadow_scoring_is_stored_apart_and_never_served(scored_world: ScoredWorld) -> None:
    world = scored_world
    day = world.days[1]
    train_and_register(world.lake, world.registry, world.use_case, seed=9)  # a 'candidate'
    served_before = world.lake.version(PREDICTIONS)
    current_before = (
        current_predictions(world.lake, TABLES).filter(pl.col("as_of_date") == day).collect()
    )
    config = {"ops": {"churn_predictions": {"config": {"model_alias": "candidate"}}}}
    world.score(day, run_config=config)
    shadow = world.lake.read(TABLES.shadow_predictions, where=pl.col("as_of_date") == day)
    assert shadow.height == current_before.height
    assert set(shadow["model_alias"]) == {"candidate"}
    assert world.lake.version(PREDICTIONS) == served_before
    current_after = (
        current_predictions(world.lake, TABLES).filter(pl.col("as_of_date") == day).collect()
    )
    assert (
        current_after["scoring_run_id"].unique().to_list()
        == current_before["scoring_run_id"].unique().to_list()
    )
    runs = world.lake.read(RUNS, where=pl.col("as_of_date") == day)
    assert sorted(set(runs["model_alias"])) == ["candidate", "champion"]


def test_the_shadow_model_is_scored_beside_the_champion_from_the_same_rows(
    scored_world: ScoredWorld,
) -> None:
    """With a model in shadow, one default scoring run records two runs of the day — the
    champion's (served) and the shadow model's (never served) — from the same pinned feature
    versions, so every entity has one score of each."""
    world = scored_world
    day = world.days[0]
    shadow = train_and_register(world.lake, world.registry, world.use_case, seed=11)
    world.registry.set_alias("shadow", shadow)
    try:
        result = world.score(day)
    finally:
        world.registry.delete_alias("shadow")
    runs = world.lake.read(
        RUNS, where=(pl.col("as_of_date") == day) & (pl.col("dagster_run_id") == result.run_id)
    )
    by_alias = {r["model_alias"]: r for r in runs.iter_rows(named=True)}
    assert sorted(by_alias) == ["champion", "shadow"]
    assert by_alias["shadow"]["model_version"] == shadow
    assert by_alias["shadow"]["scoring_run_id"] == f"{result.run_id}:{day}:shadow"
    assert by_alias["shadow"]["source_versions"] == by_alias["champion"]["source_versions"]
    served = world.lake.read(
        PREDICTIONS, where=pl.col("scoring_run_id") == by_alias["champion"]["scoring_run_id"]
    )
    shadowed = world.lake.read(
        TABLES.shadow_predictions,
        where=pl.col("scoring_run_id") == by_alias["shadow"]["scoring_run_id"],
    )
    assert sorted(served["customer_id"]) == sorted(shadowed["customer_id"])
    assert set(shadowed["model_version"]) == {shadow}
    online = current_predictions(world.lake, TABLES).filter(pl.col("as_of_date") == day).collect()
    assert set(online["model_version"]) == {world.champion}  # only the champion is served


def test_runs_record_the_explainer_backend_and_iteration_range(scored_world: ScoredWorld) -> None:
    world = scored_world
    # The champion's runs (earlier tests of the module shadow-score other versions).
    runs = world.lake.read(RUNS, where=pl.col("model_version") == world.champion)
    rounds = world.registry.load_booster(world.champion).num_boosted_rounds()
    assert set(runs["explainer_backend"]) == {"tables"}
    assert set(runs["iteration_range"]) == {f"0,{rounds}"}
    assert world.registry.version(world.champion).tags["iteration_range"] == f"0,{rounds}"


def test_a_registered_iteration_range_is_what_scores_and_explains(
    scored_world: ScoredWorld,
) -> None:
    from models.scoring.batch import ScoringModel

    world = scored_world
    booster = world.registry.load_booster(world.champion)
    half = (0, booster.num_boosted_rounds() // 2)
    model = ScoringModel("churn", "x", "champion", booster, "churn_v1", 0, iteration_range=half)
    matrix = np.random.default_rng(0).normal(size=(50, len(CHURN.encoding.names)))
    matrix = matrix.astype(np.float32)
    data = xgb.DMatrix(matrix, feature_names=CHURN.encoding.names)
    margin = booster.predict(data, output_margin=True, iteration_range=half)
    shap = model.explainer().shap_values(matrix)
    assert np.abs(shap.sum(axis=1) - margin).max() < 1e-5
    assert np.array_equal(model.predict(matrix), booster.predict(data, iteration_range=half))
    assert np.abs(booster.predict(data) - model.predict(matrix)).max() > 0  # fewer trees


def test_a_compiled_model_scores_exactly_as_xgboost(scored_world: ScoredWorld) -> None:
    """``ScoringModel.compiled`` (what the scoring service serves) predicts a few rows with its
    compiled trees and more with xgboost; either way the float32 scores are xgboost's."""
    from models.scoring.batch import COMPILED_MAX_ROWS, ScoringModel

    world = scored_world
    booster = world.registry.load_booster(world.champion)
    half = (0, booster.num_boosted_rounds() // 2)
    model = ScoringModel("churn", "x", "champion", booster, "churn_v1", 0, iteration_range=half)
    compiled = model.compiled()
    assert compiled.trees is not None and model.trees is None
    assert compiled.sha256 == model.sha256 and compiled == model
    rows = np.random.default_rng(1).normal(size=(COMPILED_MAX_ROWS + 50, len(CHURN.encoding.names)))
    rows[rows > 1.5] = np.nan
    expected = booster.inplace_predict(rows, iteration_range=half).view(np.uint32)
    for n in (1, 7, COMPILED_MAX_ROWS, COMPILED_MAX_ROWS + 50):
        assert np.array_equal(compiled.predict(rows[:n]).view(np.uint32), expected[:n])
    counted = _Counting(compiled.trees)
    spied = replace(compiled, trees=counted)
    spied.predict(rows[:COMPILED_MAX_ROWS])
    spied.predict(rows)
    assert counted.calls == [COMPILED_MAX_ROWS]  # the larger matrix went to xgboost


class _Counting:
    """A compiled predictor that counts the rows it is asked for."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.calls = inner, []

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        self.calls.append(len(matrix))
        return self.inner.predict(matrix)
