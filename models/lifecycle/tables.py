"""The model-lifecycle table of a use case: ``ml.<use case>_model_decisions`` (append-only).

One row per lifecycle move of a version (``models.lifecycle.states``): ``from_state`` →
``to_state`` with the ``decision`` that moved it (``shadow``, ``promote``, ``reject``,
``retire``, ``rollback``; ``unchanged`` and ``no-op`` move nothing), the reason, the data day it
was taken on (``as_of_date``), what triggered the version's training, and the evidence as JSON
(metrics with confidence intervals, rows, days in shadow, thresholds). The columns added with
the lifecycle are nullable, so tables written before them gain them on the next append.
"""

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
    "from_state": pl.String(),
    "to_state": pl.String(),
    "as_of_date": pl.Date(),
    "trigger": pl.String(),
    "evidence": pl.String(),
}
"""``challenger_version`` is the version the row is about; ``champion_version`` the champion
before the move."""


def decisions_table(use_case: str) -> str:
    return f"ml.{use_case}_model_decisions"


def decisions_spec(use_case: str) -> TableSpec:
    return TableSpec(
        name=decisions_table(use_case),
        schema=DECISION_COLUMNS,
        description="Every lifecycle move of a model version (candidate, shadow, champion, "
        "rejected, retired) with its reason and evidence.",
        primary_key=("decision_id",),
        append_only=True,
        additive_evolution=True,
    )
