"""The evidence tables of a use case (only those its spec asks for), named
``monitoring.<use case>_<table>``; all append-only, one computation per Dagster run.

* ``explanation_agreement``: per scoring run, LIME vs SHAP on a seeded sample (mean Spearman
  rank correlation of each row's top-k features, sign agreement), the seed, the LIME settings
  and the sample's entity ids, so the metric can be recomputed;
* ``lime_explanations``: the LIME weights of every sampled row, beside its agreement;
* ``fairness``: per scoring run, protected attribute and group: rows, approval rate, mean PD,
  observed default rate where matured, adverse impact ratio and the alert.

A re-computation appends new rows (``dagster_run_id`` is part of the key); readers take the
latest ``computed_at`` per scoring run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from lakehouse.catalog import TIMESTAMP, TableSpec
from models.evidence.fairness import GROUP_SCHEMA

LIME_PREFIX = "lime__"
_RUN: dict[str, pl.DataType] = {"dagster_run_id": pl.String(), "computed_at": TIMESTAMP}
_SCORING_RUN: dict[str, pl.DataType] = {
    "scoring_run_id": pl.String(),
    "as_of_date": pl.Date(),
    "model_name": pl.String(),
    "model_version": pl.String(),
    "model_alias": pl.String(),
}

AGREEMENT_COLUMNS: dict[str, pl.DataType] = {
    **_SCORING_RUN,
    "run_rows": pl.Int64(),
    "sample_size": pl.Int64(),
    "explained": pl.Int64(),
    "skipped_missing": pl.Int64(),
    "top_k": pl.Int64(),
    "mean_spearman": pl.Float64(),
    "median_spearman": pl.Float64(),
    "sign_agreement": pl.Float64(),
    "top1_agreement": pl.Float64(),
    "min_rank_correlation": pl.Float64(),
    "alert": pl.Boolean(),
    "seed": pl.Int64(),
    "lime_settings": pl.String(),
    "sample_ids": pl.List(pl.String()),
    **_RUN,
}

FAIRNESS_COLUMNS: dict[str, pl.DataType] = {
    **_SCORING_RUN,
    **GROUP_SCHEMA,  # one row per protected group, as `group_fairness` computes it
    **_RUN,
}


def lime_columns(join_key: str, features: Sequence[str]) -> dict[str, pl.DataType]:
    return {
        "scoring_run_id": pl.String(),
        "as_of_date": pl.Date(),
        join_key: pl.String(),
        "row_seed": pl.Int64(),
        "score": pl.Float64(),
        "lime_intercept": pl.Float64(),
        "lime_local_prediction": pl.Float64(),
        "lime_fit_r2": pl.Float64(),
        "spearman": pl.Float64(),
        "sign_agreement": pl.Float64(),
        **{f"{LIME_PREFIX}{name}": pl.Float64() for name in features},
        **_RUN,
    }


@dataclass(frozen=True)
class EvidenceTables:
    """Names and specs of one use case's evidence tables."""

    use_case: str
    join_key: str
    features: tuple[str, ...]
    explanations: bool
    fairness_enabled: bool

    @property
    def agreement(self) -> str:
        return f"monitoring.{self.use_case}_explanation_agreement"

    @property
    def lime(self) -> str:
        return f"monitoring.{self.use_case}_lime_explanations"

    @property
    def fairness(self) -> str:
        return f"monitoring.{self.use_case}_fairness"

    @property
    def lime_weight_columns(self) -> list[str]:
        return [f"{LIME_PREFIX}{name}" for name in self.features]

    def specs(self) -> list[TableSpec]:
        specs = []
        if self.explanations:
            specs += [
                TableSpec(
                    name=self.agreement,
                    schema=AGREEMENT_COLUMNS,
                    description="LIME vs SHAP agreement per scoring run (seeded sample).",
                    primary_key=("scoring_run_id", "dagster_run_id"),
                    append_only=True,
                ),
                TableSpec(
                    name=self.lime,
                    schema=lime_columns(self.join_key, self.features),
                    description="LIME weights of every sampled row of a scoring run.",
                    partition_by=("as_of_date",),
                    primary_key=("scoring_run_id", self.join_key, "dagster_run_id", "as_of_date"),
                    append_only=True,
                ),
            ]
        if self.fairness_enabled:
            specs.append(
                TableSpec(
                    name=self.fairness,
                    schema=FAIRNESS_COLUMNS,
                    description="Approval rate, PD and adverse impact ratio per protected group "
                    "of each scoring run.",
                    primary_key=("scoring_run_id", "attribute", "group", "dagster_run_id"),
                    append_only=True,
                )
            )
        return specs
