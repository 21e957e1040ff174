"""The monitoring tables of a use case: one schema each, named ``monitoring.<use case>_<table>``.

* ``feature_drift``: drift of each feature and of the score vs the champion's training reference;
* ``diagnosis``: pipeline-health checks (row counts, null rates, schema, freshness) per day;
* ``performance``: matured-label performance per prediction vintage, model alias and version;
* ``verdicts``: one row per monitoring run (verdict, retrain recommendation, report), append-only.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from lakehouse.catalog import TIMESTAMP, TableSpec

_RUN: dict[str, pl.DataType] = {"dagster_run_id": pl.String(), "computed_at": TIMESTAMP}

FEATURE_DRIFT_COLUMNS: dict[str, pl.DataType] = {
    "as_of_date": pl.Date(),
    "feature": pl.String(),
    "kind": pl.String(),
    "psi": pl.Float64(),
    "ks_statistic": pl.Float64(),
    "ks_pvalue": pl.Float64(),
    "chi2_pvalue": pl.Float64(),
    "reference_rows": pl.Int64(),
    "current_rows": pl.Int64(),
    "reference_null_rate": pl.Float64(),
    "current_null_rate": pl.Float64(),
    "importance": pl.Float64(),
    "status": pl.String(),
    "model_version": pl.String(),
    "training_set_version": pl.Int64(),
    **_RUN,
}
DIAGNOSIS_COLUMNS: dict[str, pl.DataType] = {
    "as_of_date": pl.Date(),
    "check": pl.String(),
    "subject": pl.String(),
    "status": pl.String(),
    "value": pl.Float64(),
    "expected": pl.Float64(),
    "detail": pl.String(),
    **_RUN,
}
PERFORMANCE_COLUMNS: dict[str, pl.DataType] = {
    "as_of_date": pl.Date(),
    "label_as_of_date": pl.Date(),
    "model_alias": pl.String(),
    "model_version": pl.String(),
    "predictions": pl.Int64(),
    "labelled": pl.Int64(),
    "label_coverage": pl.Float64(),
    "positives": pl.Int64(),
    "roc_auc": pl.Float64(),
    "pr_auc": pl.Float64(),
    "ece": pl.Float64(),
    "training_roc_auc": pl.Float64(),
    **_RUN,
}
VERDICT_COLUMNS: dict[str, pl.DataType] = {
    "as_of_date": pl.Date(),
    "verdict": pl.String(),
    "retrain_recommended": pl.Boolean(),
    "reasons": pl.List(pl.String()),
    "evidence": pl.List(pl.String()),
    "report_path": pl.String(),
    **_RUN,
    "triggers": pl.List(pl.String()),
    "deferred": pl.List(pl.String()),
}


def _without(columns: dict[str, pl.DataType], *names: str) -> pl.Schema:
    return pl.Schema({c: t for c, t in columns.items() if c not in names})


DRIFT_SCHEMA = _without(
    FEATURE_DRIFT_COLUMNS,
    "as_of_date",
    "importance",
    "model_version",
    "training_set_version",
    *_RUN,
)
"""A drift table as ``drift.drift_table`` computes it, before the day and model are stamped."""
DIAGNOSIS_CHECK_SCHEMA = _without(DIAGNOSIS_COLUMNS, "as_of_date", *_RUN)
PERFORMANCE_SCHEMA = _without(PERFORMANCE_COLUMNS, "training_roc_auc", *_RUN)


@dataclass(frozen=True)
class MonitoringTables:
    """Names and specs of one use case's monitoring tables."""

    use_case: str

    @property
    def feature_drift(self) -> str:
        return f"monitoring.{self.use_case}_feature_drift"

    @property
    def diagnosis(self) -> str:
        return f"monitoring.{self.use_case}_diagnosis"

    @property
    def performance(self) -> str:
        return f"monitoring.{self.use_case}_performance"

    @property
    def verdicts(self) -> str:
        return f"monitoring.{self.use_case}_verdicts"

    def specs(self) -> list[TableSpec]:
        return [
            TableSpec(
                name=self.feature_drift,
                schema=FEATURE_DRIFT_COLUMNS,
                description="Drift of each feature and of the score vs the training reference.",
                partition_by=("as_of_date",),
                primary_key=("as_of_date", "feature"),
            ),
            TableSpec(
                name=self.diagnosis,
                schema=DIAGNOSIS_COLUMNS,
                description="Pipeline-health checks (row counts, null rates, schema, freshness).",
                partition_by=("as_of_date",),
                primary_key=("as_of_date", "check", "subject"),
            ),
            TableSpec(
                name=self.performance,
                schema=PERFORMANCE_COLUMNS,
                description="Matured-label performance per vintage, model alias and version.",
                primary_key=("as_of_date", "model_alias", "model_version"),
            ),
            TableSpec(
                name=self.verdicts,
                schema=VERDICT_COLUMNS,
                description="One row per monitoring run: verdict, retrain recommendation, report.",
                primary_key=("as_of_date", "dagster_run_id"),
                append_only=True,
                additive_evolution=True,
            ),
        ]
