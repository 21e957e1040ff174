"""Batch scoring: every customer active on a day, scored by one model version, explained.

For as-of day ``D`` the population is every customer with a feature row for ``D`` (subscribed
that day); the entity timestamp is midnight after ``D``, so Feast's point-in-time join returns
exactly the features the model would have had at the end of ``D`` — through the same feature
service the model was trained on. The feature tables are pinned to their versions at the start
of the run, so every chunk reads the same snapshot and a replay can read it again.

Each chunk of customers is retrieved, predicted (``inplace_predict``), explained with exact
TreeSHAP (``models.explain``) and given reason codes; memory holds one chunk at a time.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import numpy as np
import polars as pl
import xgboost as xgb
from feast import FeatureStore

from lakehouse.commit import CommitInfo
from lakehouse.features import FEATURE_TABLES
from lakehouse.landing import TIMESTAMP
from lakehouse.storage import Lakehouse
from lakehouse.tables import (
    ML_PREDICTION_EXPLANATIONS,
    ML_PREDICTIONS,
    ML_SCORING_RUNS,
    ML_SHADOW_PREDICTION_EXPLANATIONS,
    ML_SHADOW_PREDICTIONS,
)
from models.encoding import feature_matrix, feature_names
from models.explain import TreeShapExplainer
from models.reasons import Reason, load_catalogue, top_reasons
from models.registry import CHAMPION, ModelRegistry

ACTIVE_POPULATION_TABLE = "features.customer_account"
SERVING_ALIAS = CHAMPION


def output_tables(alias: str) -> tuple[str, str]:
    """(predictions, explanations) tables of a run: the served ones for the champion, the
    shadow ones for any other alias (scored, audited, monitored, never served)."""
    if alias == SERVING_ALIAS:
        return ML_PREDICTIONS.name, ML_PREDICTION_EXPLANATIONS.name
    return ML_SHADOW_PREDICTIONS.name, ML_SHADOW_PREDICTION_EXPLANATIONS.name


class ScoringError(ValueError):
    """Scoring cannot start: the message says what is missing or inconsistent."""


@dataclass(frozen=True)
class ScoringPolicy:
    """Risk bands, decision threshold, reasons per prediction and chunk size."""

    medium_risk: float = 0.05
    high_risk: float = 0.15
    decision_threshold: float = 0.10
    reasons: int = 3
    chunk_rows: int = 200_000

    def band(self, scores: pl.Expr) -> pl.Expr:
        return (
            pl.when(scores >= self.high_risk)
            .then(pl.lit("high"))
            .when(scores >= self.medium_risk)
            .then(pl.lit("medium"))
            .otherwise(pl.lit("low"))
        )

    def decision(self, scores: pl.Expr) -> pl.Expr:
        return (
            pl.when(scores >= self.decision_threshold)
            .then(pl.lit("outreach"))
            .otherwise(pl.lit("none"))
        )


@dataclass(frozen=True)
class ScoringModel:
    """One registered model version, loaded for scoring."""

    name: str
    version: str
    alias: str
    booster: xgb.Booster
    feature_service: str
    training_set_version: int
    sha256: str = field(init=False)

    def __post_init__(self) -> None:
        raw = bytes(self.booster.save_raw("json"))
        object.__setattr__(self, "sha256", hashlib.sha256(raw).hexdigest())


@dataclass(frozen=True)
class ScoringRun:
    """Identity and inputs of one scoring run of one as-of day."""

    scoring_run_id: str
    as_of: date
    dagster_run_id: str
    code_version: str
    source_versions: dict[str, int]
    scored_at: datetime


@dataclass(frozen=True)
class ScoredChunk:
    predictions: pl.DataFrame
    explanations: pl.DataFrame
    inputs: np.ndarray  # the encoded model inputs, rows in the same order


def check_model_features(model: ScoringModel, store: FeatureStore) -> list[str]:
    """The model's features, checked against its feature service and the encoding contract."""
    expected = feature_names()
    booster_names = list(model.booster.feature_names or [])
    service = store.get_feature_service(model.feature_service)
    served = [
        f.name for projection in service.feature_view_projections for f in projection.features
    ]
    problems = []
    if booster_names != expected:
        problems.append(
            f"model {model.name} v{model.version} features differ from the encoding contract: "
            f"missing {sorted(set(expected) - set(booster_names))}, "
            f"extra {sorted(set(booster_names) - set(expected))}"
        )
    if sorted(served) != sorted(expected):
        problems.append(
            f"feature service {model.feature_service!r} serves {len(served)} features; the model "
            f"needs {len(expected)}: missing {sorted(set(expected) - set(served))}, "
            f"extra {sorted(set(served) - set(expected))}"
        )
    if problems:
        raise ScoringError("; ".join(problems))
    return expected


def pin_feature_versions(lake: Lakehouse) -> dict[str, int]:
    """Current versions of the feature tables (read once at run start)."""
    versions = {}
    for name in FEATURE_TABLES:
        version = lake.version(name)
        if version is None:
            raise ScoringError(f"{name} has never been written: build features before scoring")
        versions[name] = version
    return versions


def population(lake: Lakehouse, as_of: date, versions: Mapping[str, int]) -> pl.DataFrame:
    """Customers active on ``as_of`` with their entity timestamp, sorted by customer id."""
    version = versions[ACTIVE_POPULATION_TABLE]
    customers = (
        lake.scan(ACTIVE_POPULATION_TABLE, version=version)
        .filter(pl.col("feature_date") == as_of)
        .select("customer_id")
        .unique()
        .sort("customer_id")
        .collect()
    )
    if customers.is_empty():
        raise ScoringError(
            f"{ACTIVE_POPULATION_TABLE} v{version} has no rows for {as_of}: nothing to score "
            "(build that day's features first)"
        )
    timestamp = datetime.combine(as_of + timedelta(days=1), time(0), tzinfo=UTC)
    return customers.with_columns(pl.lit(timestamp, dtype=TIMESTAMP).alias("event_timestamp"))


def score_chunks(
    model: ScoringModel,
    store: FeatureStore,
    entities: pl.DataFrame,
    run: ScoringRun,
    policy: ScoringPolicy,
    *,
    explainer: TreeShapExplainer | None = None,
    catalogue: dict[str, Reason] | None = None,
    on_chunk: Callable[[int, int], None] | None = None,
) -> Iterator[ScoredChunk]:
    """Predictions, explanations and model inputs per chunk of ``entities``, in entity order."""
    names = feature_names()
    explainer = explainer or TreeShapExplainer(model.booster)
    catalogue = catalogue or load_catalogue()
    service = store.get_feature_service(model.feature_service)
    for start in range(0, entities.height, policy.chunk_rows):
        chunk = entities.slice(start, policy.chunk_rows)
        job = store.get_historical_features(entity_df=chunk.to_pandas(), features=service)
        retrieved = pl.from_arrow(job.to_arrow())
        assert isinstance(retrieved, pl.DataFrame)
        matrix = feature_matrix(retrieved)
        scored, explained = score_matrix(
            model, explainer, catalogue, retrieved, matrix, names, run, policy
        )
        yield ScoredChunk(scored, explained, matrix)
        if on_chunk is not None:
            on_chunk(start + chunk.height, entities.height)


def score_matrix(
    model: ScoringModel,
    explainer: TreeShapExplainer,
    catalogue: dict[str, Reason],
    rows: pl.DataFrame,
    matrix: np.ndarray,
    names: list[str],
    run: ScoringRun,
    policy: ScoringPolicy,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Scores, bands, reasons and SHAP of retrieved feature ``rows`` (``matrix`` encoded)."""
    scores = model.booster.inplace_predict(matrix).astype(np.float64)
    contributions = explainer.shap_values(matrix)
    reasons = top_reasons(contributions[:, :-1], matrix, names, catalogue, policy.reasons)
    ids = rows.select(
        (pl.lit(f"{run.scoring_run_id}:") + pl.col("customer_id")).alias("prediction_id"),
        pl.lit(run.scoring_run_id).alias("scoring_run_id"),
        "customer_id",
        pl.lit(run.as_of).alias("as_of_date"),
    )
    score = pl.Series("score", scores)
    predictions = pl.concat(
        [
            ids,
            rows.select(pl.col("event_timestamp").cast(TIMESTAMP)),
            pl.DataFrame([score]).select(
                "score",
                policy.band(pl.col("score")).alias("risk_band"),
                policy.decision(pl.col("score")).alias("decision"),
            ),
            pl.DataFrame({"missing_feature_count": np.isnan(matrix).sum(axis=1).astype(np.int64)}),
            reasons,
        ],
        how="horizontal",
    ).with_columns(
        pl.lit(model.name).alias("model_name"),
        pl.lit(model.version).alias("model_version"),
        pl.lit(model.alias).alias("model_alias"),
        pl.lit(model.sha256).alias("model_sha256"),
        pl.lit(model.feature_service).alias("feature_service"),
        pl.lit(json.dumps(run.source_versions, sort_keys=True)).alias("source_versions"),
        pl.lit(model.training_set_version, dtype=pl.Int64).alias("training_set_version"),
        pl.lit(run.dagster_run_id).alias("dagster_run_id"),
        pl.lit(run.as_of.isoformat()).alias("partition"),
        pl.lit(run.code_version).alias("code_version"),
        pl.lit(run.scored_at, dtype=TIMESTAMP).alias("scored_at"),
    )
    explanations = pl.concat(
        [
            ids,
            pl.DataFrame(
                {"base_value": contributions[:, -1]}
                | {f"shap__{name}": contributions[:, i] for i, name in enumerate(names)}
            ),
        ],
        how="horizontal",
    )
    return (
        predictions.select(list(ML_PREDICTIONS.schema)),
        explanations.select(list(ML_PREDICTION_EXPLANATIONS.schema)),
    )


def current_predictions(lake: Lakehouse) -> pl.LazyFrame:
    """Predictions of the latest completed champion scoring run of each as-of date
    (superseded runs stay in ``ml.predictions`` as the audit record, but are not current)."""
    latest = (
        lake.scan("ml.scoring_runs")
        .filter(pl.col("model_alias") == SERVING_ALIAS)
        .sort("finished_at")
        .group_by("as_of_date")
        .agg(pl.col("scoring_run_id").last())
    )
    return lake.scan("ml.predictions").join(latest, on=["as_of_date", "scoring_run_id"], how="semi")


def load_model(
    registry: ModelRegistry, *, alias: str = CHAMPION, version: str | None = None
) -> ScoringModel:
    """The model an alias points at (resolved now, once), or a given version."""
    if version is None:
        found = registry.alias(alias)
        if found is None:
            raise ScoringError(
                f"no model version has the alias {alias!r} in model {registry.model_name}: train "
                "and promote a model before scoring"
            )
    else:
        found = registry.version(version)
    tags = found.tags or {}
    return ScoringModel(
        name=registry.model_name,
        version=str(found.version),
        alias=alias if version is None else "",
        booster=registry.load_booster(found.version),
        feature_service=tags.get("feature_service", "churn_v1"),
        training_set_version=int(tags.get("training_set_version", -1)),
    )


@dataclass(frozen=True)
class ScoringResult:
    run: ScoringRun
    rows: int
    predictions_version: int
    explanations_version: int
    sample_scores: np.ndarray  # up to PLOT_SAMPLE rows, for plots
    sample_shap: np.ndarray
    sample_inputs: np.ndarray


PLOT_SAMPLE = 5_000


def score_day(
    lake: Lakehouse,
    store: FeatureStore,
    model: ScoringModel,
    run: ScoringRun,
    policy: ScoringPolicy,
    *,
    on_chunk: Callable[[int, int], None] | None = None,
) -> ScoringResult:
    """Score every customer active on ``run.as_of`` and append the audited records.

    Everything that can be checked is checked before anything is written. Explanations,
    then predictions, then the ``ml.scoring_runs`` row are committed; the run only becomes the
    current one of its day with that last commit.
    """
    check_model_features(model, store)
    entities = population(lake, run.as_of, run.source_versions)
    started = datetime.now(UTC)
    commit = CommitInfo(
        run_id=run.dagster_run_id,
        asset_key="ml/predictions",
        partition=run.as_of.isoformat(),
        extra={"scoring_run_id": run.scoring_run_id, "model_version": model.version},
    )
    samples: list[ScoredChunk] = []
    predictions_table, explanations_table = output_tables(model.alias)
    with (
        lake.staged_append(predictions_table, commit=commit) as predictions,
        lake.staged_append(explanations_table, commit=commit) as explanations,
    ):
        for chunk in score_chunks(model, store, entities, run, policy, on_chunk=on_chunk):
            predictions.write(chunk.predictions)
            explanations.write(chunk.explanations)
            need = PLOT_SAMPLE - sum(len(s.inputs) for s in samples)
            if need > 0:  # keep a slice, not the chunk: memory stays at one chunk
                samples.append(
                    ScoredChunk(
                        chunk.predictions.head(need),
                        chunk.explanations.head(need),
                        chunk.inputs[:need].copy(),
                    )
                )
    assert predictions.result is not None and explanations.result is not None
    record = pl.DataFrame(
        {
            "scoring_run_id": [run.scoring_run_id],
            "as_of_date": [run.as_of],
            "dagster_run_id": [run.dagster_run_id],
            "partition": [run.as_of.isoformat()],
            "model_name": [model.name],
            "model_version": [model.version],
            "model_alias": [model.alias],
            "feature_service": [model.feature_service],
            "source_versions": [json.dumps(run.source_versions, sort_keys=True)],
            "scoring_policy": [json.dumps(asdict(policy), sort_keys=True)],
            "predictions_version": [predictions.result.version],
            "explanations_version": [explanations.result.version],
            "rows": [predictions.rows],
            "started_at": [started],
            "finished_at": [datetime.now(UTC)],
            "code_version": [run.code_version],
        },
        schema=ML_SCORING_RUNS.polars_schema,
    )
    lake.append(ML_SCORING_RUNS.name, record, commit=commit)
    shap_columns = [c for c in ML_PREDICTION_EXPLANATIONS.schema if c.startswith("shap__")]
    return ScoringResult(
        run,
        predictions.rows,
        predictions.result.version,
        explanations.result.version,
        np.concatenate([s.predictions["score"].to_numpy() for s in samples])[:PLOT_SAMPLE],
        np.concatenate([s.explanations.select(shap_columns).to_numpy() for s in samples])[
            :PLOT_SAMPLE
        ],
        np.concatenate([s.inputs for s in samples])[:PLOT_SAMPLE],
    )
