"""The audited scoring tables of a use case, named ``ml.<use case>_<table>``.

* ``predictions``: every score with band, decision, reasons, model, data versions and run;
* ``prediction_explanations``: the full SHAP vector (log-odds) and base value per prediction;
* ``scoring_runs``: one row per completed run; the latest champion run of a day is current;
* ``shadow_predictions`` / ``shadow_prediction_explanations``: the same rows for models scored
  beside the champion (audited and monitored, never served);
* ``online_predictions``: every on-demand decision of the scoring service (one row per request
  item and model role: champion, canary or shadow), and every rejected request with its reason.

All are append-only: a re-run supersedes a day's predictions without erasing them. A run commits
its explanations, then its predictions, then its ``scoring_runs`` row, and readers see prediction
and explanation rows only of runs that row records (``TableSpec.recorded_by``): a run killed
between its commits is invisible, and ``scorehouse doctor`` lists what it left.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from lakehouse.catalog import TIMESTAMP, TableSpec

SHAP_PREFIX = "shap__"
DECISION_FIELDS = (
    "score",
    "risk_band",
    "decision",
    "missing_feature_count",
    "reason_codes",
    "reason_features",
    "reason_values",
    "reason_contributions",
)
"""The columns of one scored row that make its decision (batch and online alike)."""
BASE_VALUE = "base_value"


def scoring_run_columns() -> dict[str, pl.DataType]:
    return {
        "scoring_run_id": pl.String(),
        "as_of_date": pl.Date(),
        "dagster_run_id": pl.String(),
        "partition": pl.String(),
        "model_name": pl.String(),
        "model_version": pl.String(),
        "model_alias": pl.String(),
        "feature_service": pl.String(),
        "source_versions": pl.String(),
        "scoring_policy": pl.String(),
        "predictions_version": pl.Int64(),
        "explanations_version": pl.Int64(),
        "rows": pl.Int64(),
        "explainer_backend": pl.String(),
        "iteration_range": pl.String(),
        "started_at": TIMESTAMP,
        "finished_at": TIMESTAMP,
        "code_version": pl.String(),
    }


def prediction_columns(join_key: str) -> dict[str, pl.DataType]:
    return {
        "prediction_id": pl.String(),
        "scoring_run_id": pl.String(),
        join_key: pl.String(),
        "as_of_date": pl.Date(),
        "event_timestamp": TIMESTAMP,
        "score": pl.Float64(),
        "risk_band": pl.String(),
        "decision": pl.String(),
        "missing_feature_count": pl.Int64(),
        "reason_codes": pl.List(pl.String()),
        "reason_features": pl.List(pl.String()),
        "reason_values": pl.List(pl.Float64()),
        "reason_contributions": pl.List(pl.Float64()),
        "model_name": pl.String(),
        "model_version": pl.String(),
        "model_alias": pl.String(),
        "model_sha256": pl.String(),
        "feature_service": pl.String(),
        "source_versions": pl.String(),
        "training_set_version": pl.Int64(),
        "dagster_run_id": pl.String(),
        "partition": pl.String(),
        "code_version": pl.String(),
        "scored_at": TIMESTAMP,
    }


def explanation_columns(join_key: str, features: Sequence[str]) -> dict[str, pl.DataType]:
    return {
        "prediction_id": pl.String(),
        "scoring_run_id": pl.String(),
        join_key: pl.String(),
        "as_of_date": pl.Date(),
        BASE_VALUE: pl.Float64(),
        **{f"{SHAP_PREFIX}{name}": pl.Float64() for name in features},
    }


ONLINE_ROLES = ("champion", "canary", "shadow")
REJECTED_ROLE = "none"
"""The role of a rejected request's row: no model produced it."""


def online_prediction_columns(join_key: str, features: Sequence[str]) -> dict[str, pl.DataType]:
    """An on-demand decision: the request, the features used, the model, score, reasons, SHAP.

    ``features`` holds the model inputs as used (a JSON object, feature → value, before
    encoding), so a replay recomputes the row from them exactly.
    """
    return {
        "request_id": pl.String(),
        "item": pl.Int64(),
        "role": pl.String(),
        "served": pl.Boolean(),
        "request_date": pl.Date(),
        "requested_at": TIMESTAMP,
        "client_request_id": pl.String(),
        join_key: pl.String(),
        "outcome": pl.String(),
        "status": pl.Int64(),
        "error_code": pl.String(),
        "error_field": pl.String(),
        "error_message": pl.String(),
        "feature_source": pl.String(),
        "features": pl.String(),
        "features_event_timestamp": TIMESTAMP,
        "model_name": pl.String(),
        "model_version": pl.String(),
        "model_sha256": pl.String(),
        "iteration_range": pl.String(),
        "explainer_backend": pl.String(),
        "feature_service": pl.String(),
        "score": pl.Float64(),
        "risk_band": pl.String(),
        "decision": pl.String(),
        "missing_feature_count": pl.Int64(),
        "reason_codes": pl.List(pl.String()),
        "reason_features": pl.List(pl.String()),
        "reason_values": pl.List(pl.Float64()),
        "reason_contributions": pl.List(pl.Float64()),
        BASE_VALUE: pl.Float64(),
        **{f"{SHAP_PREFIX}{name}": pl.Float64() for name in features},
        "scoring_policy": pl.String(),
        "latency_ms": pl.Float64(),
        "worker": pl.String(),
        "code_version": pl.String(),
    }


@dataclass(frozen=True)
class ScoringTables:
    """Names and specs of one use case's scoring tables."""

    use_case: str
    join_key: str
    features: tuple[str, ...]

    @property
    def predictions(self) -> str:
        return f"ml.{self.use_case}_predictions"

    @property
    def explanations(self) -> str:
        return f"ml.{self.use_case}_prediction_explanations"

    @property
    def scoring_runs(self) -> str:
        return f"ml.{self.use_case}_scoring_runs"

    @property
    def shadow_predictions(self) -> str:
        return f"ml.{self.use_case}_shadow_predictions"

    @property
    def shadow_explanations(self) -> str:
        return f"ml.{self.use_case}_shadow_prediction_explanations"

    @property
    def online_predictions(self) -> str:
        return f"ml.{self.use_case}_online_predictions"

    def outputs(self, served: bool) -> tuple[str, str]:
        """(predictions, explanations) of a run: the served tables or the shadow ones."""
        if served:
            return self.predictions, self.explanations
        return self.shadow_predictions, self.shadow_explanations

    @property
    def shap_columns(self) -> list[str]:
        return [f"{SHAP_PREFIX}{name}" for name in self.features]

    def specs(self) -> list[TableSpec]:
        predictions = prediction_columns(self.join_key)
        explanations = explanation_columns(self.join_key, self.features)
        partitioned = {
            "partition_by": ("as_of_date",),
            "primary_key": ("prediction_id", "as_of_date"),
            "append_only": True,
            # The run record is the commit point: rows of a run that died before it are unread.
            "recorded_by": (self.scoring_runs, "scoring_run_id"),
        }
        return [
            TableSpec(
                name=self.scoring_runs,
                schema=scoring_run_columns(),
                description=(
                    "One row per completed scoring run. The current predictions of an as-of date "
                    "are those of its latest champion run here; earlier runs stay as the audit "
                    "record."
                ),
                primary_key=("scoring_run_id",),
                append_only=True,
            ),
            TableSpec(
                name=self.predictions,
                schema=predictions,
                description=f"Every {self.use_case} score with its reasons, model, data versions "
                "and run (append-only).",
                **partitioned,  # type: ignore[arg-type]
            ),
            TableSpec(
                name=self.explanations,
                schema=explanations,
                description="Full SHAP vector (log-odds) and base value of every prediction.",
                **partitioned,  # type: ignore[arg-type]
            ),
            TableSpec(
                name=self.shadow_predictions,
                schema=predictions,
                description="Shadow scores of non-serving models, as the predictions table.",
                **partitioned,  # type: ignore[arg-type]
            ),
            TableSpec(
                name=self.shadow_explanations,
                schema=explanations,
                description="SHAP of shadow scores, as the explanations table.",
                **partitioned,  # type: ignore[arg-type]
            ),
            TableSpec(
                name=self.online_predictions,
                schema=online_prediction_columns(self.join_key, self.features),
                description=(
                    f"Every on-demand {self.use_case} decision of the scoring service (request, "
                    "features used, model and role, score, reasons, SHAP, latency) and every "
                    "rejected request with its reason (append-only)."
                ),
                partition_by=("request_date",),
                primary_key=("request_id", "item", "role", "request_date"),
                append_only=True,
            ),
        ]
