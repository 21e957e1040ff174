"""Replay a scoring run, or an on-demand request, exactly: same inputs, model version, code path.

``replay_run`` reads the run's record in the scoring-runs table, re-reads the feature tables at
the recorded Delta versions through the same feature service, loads the recorded model version,
recomputes scores, bands, decisions, reason codes and SHAP values, and compares every value with
what the run stored (exact equality; floats bit for bit). Later appends, compaction and a new
champion do not change the outcome: time travel and the registry keep every input.

``replay_request`` does the same for one on-demand request of the scoring service: it reads the
request's rows in ``ml.<uc>_online_predictions``, rebuilds each row's features from the stored
values, rescores them with the recorded model version and scoring policy through
``score_matrix``, and compares score, band, decision, reasons, model hash and SHAP exactly.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import polars as pl
from feast import FeatureStore

from lakehouse.storage import Lakehouse
from models.lifecycle.registry import ModelRegistry
from models.scoring.batch import (
    ScoringRun,
    check_model_features,
    feature_frame,
    load_model,
    population,
    score_chunks,
    score_matrix,
)
from models.scoring.policy import ScoringPolicy
from models.scoring.runs import SERVING_ALIAS
from models.scoring.tables import BASE_VALUE, DECISION_FIELDS
from models.usecase.spec import UseCase

_NOT_COMPARED = {"scored_at"}  # wall-clock time of the run, not a computed value


@dataclass
class ReplayReport:
    scoring_run_id: str
    rows: int
    differences: list[str] = field(default_factory=list)

    @property
    def matches(self) -> bool:
        return not self.differences


def find_runs(lake: Lakehouse, use_case: UseCase, run_id: str) -> pl.DataFrame:
    """Scoring-run records of a scoring run id, or of every day of a Dagster run id."""
    table = use_case.tables.scoring.scoring_runs
    if not lake.exists(table):
        return pl.DataFrame(schema=use_case.table_spec(table).polars_schema)
    runs = lake.read(table).filter(
        (pl.col("scoring_run_id") == run_id) | (pl.col("dagster_run_id") == run_id)
    )
    return runs.sort("as_of_date")


def replay_run(
    lake: Lakehouse,
    use_case: UseCase,
    store_for: Callable[[dict[str, int]], FeatureStore],
    registry: ModelRegistry,
    record: dict,
) -> ReplayReport:
    """Recompute one recorded run (with its recorded policy) and compare with its stored rows."""
    versions = json.loads(record["source_versions"])
    policy = ScoringPolicy(**json.loads(record["scoring_policy"]))
    store = store_for(versions)
    model = load_model(registry, version=record["model_version"])
    check_model_features(model, store, use_case.encoding)
    tables = use_case.tables.scoring
    predictions_table, explanations_table = tables.outputs(record["model_alias"] == SERVING_ALIAS)
    this_run = pl.col("scoring_run_id") == record["scoring_run_id"]
    stored_predictions = lake.read(predictions_table, where=this_run).sort("prediction_id")
    stored_explanations = lake.read(explanations_table, where=this_run).sort("prediction_id")
    first = stored_predictions.row(0, named=True) if stored_predictions.height else {}
    run = ScoringRun(
        scoring_run_id=record["scoring_run_id"],
        as_of=record["as_of_date"],
        dagster_run_id=record["dagster_run_id"],
        code_version=record["code_version"],
        source_versions=versions,
        scored_at=first.get("scored_at", datetime.now(UTC)),
    )
    if first:  # the alias is a label of the original run (the version may be promoted since)
        model = replace(model, alias=first["model_alias"])
    entities = population(lake, use_case, run.as_of, versions)
    chunks = list(score_chunks(model, store, use_case, entities, run, policy))
    predictions = pl.concat([c.predictions for c in chunks]).sort("prediction_id")
    explanations = pl.concat([c.explanations for c in chunks]).sort("prediction_id")
    report = ReplayReport(run.scoring_run_id, predictions.height)
    report.differences += _compare(predictions_table, stored_predictions, predictions)
    report.differences += _compare(explanations_table, stored_explanations, explanations)
    return report


def _compare(table: str, stored: pl.DataFrame, recomputed: pl.DataFrame) -> list[str]:
    """Every difference between two frames keyed by ``prediction_id`` (at most 20 listed)."""
    problems: list[str] = []
    if stored.height != recomputed.height:
        problems.append(f"{table}: {stored.height} stored rows, {recomputed.height} recomputed")
    ids_stored = set(stored["prediction_id"].to_list())
    ids_new = set(recomputed["prediction_id"].to_list())
    if ids_stored != ids_new:
        problems.append(
            f"{table}: {len(ids_stored - ids_new)} stored predictions not recomputed, "
            f"{len(ids_new - ids_stored)} recomputed predictions not stored"
        )
        return problems
    for column in stored.columns:
        if column in _NOT_COMPARED:
            continue
        differs = ~pl.Series(stored[column]).eq_missing(recomputed[column])
        count = int(differs.sum())
        if count:
            index = int(differs.arg_true()[0])
            problems.append(
                f"{table}.{column}: {count} rows differ (e.g. {stored['prediction_id'][index]}: "
                f"stored {stored[column][index]!r}, recomputed {recomputed[column][index]!r})"
            )
    return problems[:20]


_ONLINE_COMPARED = (*DECISION_FIELDS, "model_sha256")


def find_request(lake: Lakehouse, use_case: UseCase, request_id: str) -> pl.DataFrame:
    """The audit rows of one on-demand request (every item and role), in item order."""
    table = use_case.tables.scoring.online_predictions
    if not lake.exists(table):
        return pl.DataFrame(schema=use_case.table_spec(table).polars_schema)
    rows = lake.read(table, where=pl.col("request_id") == request_id)
    return rows.sort("item", "role")


def replay_request(use_case: UseCase, registry: ModelRegistry, rows: pl.DataFrame) -> ReplayReport:
    """Recompute the scored rows of one request (``find_request``) and compare them exactly.

    A refused request has no scored rows: its report has 0 rows and no differences.
    """
    request_id = str(rows["request_id"][0]) if rows.height else ""
    scored = rows.filter(pl.col("outcome") == "scored")
    report = ReplayReport(request_id, scored.height)
    key = use_case.entity.join_key
    shap = use_case.tables.scoring.shap_columns
    for (version, role), group in scored.group_by(["model_version", "role"], maintain_order=True):
        model = replace(load_model(registry, version=str(version)), alias=str(role))
        first = group.row(0, named=True)
        run = ScoringRun(
            scoring_run_id=request_id,
            as_of=first["request_date"],
            dagster_run_id="",
            code_version=first["code_version"],
            source_versions={},
            scored_at=first["requested_at"],
        )
        features = [json.loads(text) for text in group["features"]]
        frame = feature_frame(use_case.encoding, group[key].to_list(), features, run.scored_at)
        matrix = use_case.encoding.matrix(frame)
        policy = ScoringPolicy(**json.loads(first["scoring_policy"]))
        predictions, explanations = score_matrix(
            model, model.explainer(), use_case, frame, matrix, run, policy
        )
        recomputed = pl.concat(
            [
                group.select("item"),
                predictions.select(_ONLINE_COMPARED),
                explanations.select(BASE_VALUE, *shap),
            ],
            how="horizontal",
        )
        stored = group.select("item", *_ONLINE_COMPARED, BASE_VALUE, *shap)
        label = f"{use_case.tables.scoring.online_predictions} ({role} v{version})"
        report.differences += _compare_items(label, stored, recomputed)
    return report


def _compare_items(table: str, stored: pl.DataFrame, recomputed: pl.DataFrame) -> list[str]:
    problems = []
    for column in stored.columns:
        differs = ~stored[column].eq_missing(recomputed[column])
        count = int(differs.sum())
        if count:
            index = int(differs.arg_true()[0])
            problems.append(
                f"{table}.{column}: {count} rows differ (e.g. item {stored['item'][index]}: "
                f"stored {stored[column][index]!r}, recomputed {recomputed[column][index]!r})"
            )
    return problems[:20]
