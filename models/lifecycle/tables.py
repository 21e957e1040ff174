"""The model-lifecycle table of a use case: ``ml.<use case>_model_decisions`` (append-only)."""

from __future__ import annotations

import polars as pl

from lakehouse.catalog import TIMESTAMP, TableSpec

DECISION_COLUMNS: dict[str, pl.DataType] = {
    "decision_id": pl.String(),
    "decided_at": TIMESTAMP,
    "model_name": pl.String(),
    "challenger_version": pl.String(),
    "champion_version": pl.String(),
    "decision": pl.String(),
    "reason": pl.String(),
    "challenger_roc_auc": pl.Float64(),
    "champion_roc_auc": pl.Float64(),
    "challenger_calibration_error": pl.Float64(),
    "dagster_run_id": pl.String(),
}


def decisions_table(use_case: str) -> str:
    return f"ml.{use_case}_model_decisions"


def decisions_spec(use_case: str) -> TableSpec:
    return TableSpec(
        name=decisions_table(use_case),
        schema=DECISION_COLUMNS,
        description="Every champion/challenger decision (promote, reject, rollback), with why.",
        primary_key=("decision_id",),
        append_only=True,
    )
