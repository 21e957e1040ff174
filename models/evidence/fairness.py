"""Fairness evidence of one scoring run: outcomes per protected group (fairlearn metrics).

For every protected attribute and each of its groups (a missing value is its own group,
``(unknown)``):

* ``approval_rate``: the share of the group's scored rows whose outcome is not adverse (its
  band is one of the adverse bands, or its decision is the adverse decision);
* ``adverse_impact_ratio``: the group's approval rate over the highest approval rate of the
  groups large enough to judge (``min_group_rows``): the four-fifths rule's ratio;
* ``approval_rate_gap``: the group's approval rate minus that reference group's;
* ``mean_pd`` and, where labels have matured, ``observed_default_rate`` and
  ``calibration_gap`` = mean PD − observed rate over the matured rows;
* ``alert``: the ratio is below ``min_adverse_impact_ratio`` for a group of at least
  ``min_group_rows`` rows.

The per-group rates come from ``fairlearn.metrics.MetricFrame`` (``selection_rate`` of the
approval indicator, ``mean_prediction`` of the PD); the ratio and the gaps are plain arithmetic
on them, so a reader can recompute every figure from the table by hand.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import polars as pl
from fairlearn.metrics import MetricFrame, count, mean_prediction, selection_rate

UNKNOWN_GROUP = "(unknown)"
RATIO_TOLERANCE = 1e-9
"""A ratio at the threshold does not alert (0.6 / 0.75 is 0.7999… in floating point)."""
APPROVED, SCORE, OUTCOME = "_approved", "score", "_outcome"


@dataclass(frozen=True)
class FairnessRule:
    """What is adverse and when a group alerts."""

    adverse_bands: tuple[str, ...]
    adverse_decision: str
    min_adverse_impact_ratio: float
    min_group_rows: int

    @property
    def definition(self) -> str:
        if self.adverse_bands:
            return f"risk_band in {list(self.adverse_bands)}"
        return f"decision == {self.adverse_decision!r}"

    def approved(self) -> pl.Expr:
        if self.adverse_bands:
            return ~pl.col("risk_band").is_in(list(self.adverse_bands))
        return pl.col("decision") != self.adverse_decision


def _rates(values: pd.Series, groups: pd.Series, metric: object) -> dict[str, float]:
    frame = MetricFrame(
        metrics={"value": metric},
        y_true=values,
        y_pred=values,
        sensitive_features=groups,
    )
    by_group = frame.by_group["value"]
    return {str(g): float(v) for g, v in by_group.items()}


def group_fairness(scored: pl.DataFrame, attributes: list[str], rule: FairnessRule) -> pl.DataFrame:
    """Rows per (attribute, group) of the module docstring.

    ``scored``: one row per scored entity with ``score``, ``risk_band``, ``decision``, each
    attribute column and ``_outcome`` (the matured label, null where not matured).
    """
    frame = scored.with_columns(rule.approved().cast(pl.Int64).alias(APPROVED))
    rows = []
    for attribute in attributes:
        groups = frame[attribute].cast(pl.String).fill_null(UNKNOWN_GROUP).to_pandas()
        approved = frame[APPROVED].to_pandas()
        sizes = _rates(approved, groups, count)
        approval = _rates(approved, groups, selection_rate)
        mean_pd = _rates(frame[SCORE].to_pandas(), groups, mean_prediction)
        matured = frame.filter(pl.col(OUTCOME).is_not_null())
        observed: dict[str, float] = {}
        matured_rows: dict[str, float] = {}
        predicted: dict[str, float] = {}
        if matured.height:
            m_groups = matured[attribute].cast(pl.String).fill_null(UNKNOWN_GROUP).to_pandas()
            outcomes = matured[OUTCOME].cast(pl.Int64).to_pandas()
            observed = _rates(outcomes, m_groups, selection_rate)
            matured_rows = _rates(outcomes, m_groups, count)
            predicted = _rates(matured[SCORE].to_pandas(), m_groups, mean_prediction)
        judged = {g: r for g, r in approval.items() if sizes[g] >= rule.min_group_rows}
        reference = max(judged or approval, key=lambda g: ((judged or approval)[g], g))
        best = approval[reference]
        for group in sorted(approval):
            ratio = approval[group] / best if best > 0 else math.nan
            seen = observed.get(group)
            rows.append(
                {
                    "attribute": attribute,
                    "group": group,
                    "rows": int(sizes[group]),
                    "adverse": round(sizes[group] * (1 - approval[group])),
                    "approval_rate": approval[group],
                    "reference_group": reference,
                    "approval_rate_gap": approval[group] - best,
                    "adverse_impact_ratio": ratio,
                    "mean_pd": mean_pd[group],
                    "matured": int(matured_rows.get(group, 0)),
                    "observed_default_rate": seen,
                    "calibration_gap": None if seen is None else predicted[group] - seen,
                    "min_adverse_impact_ratio": rule.min_adverse_impact_ratio,
                    "alert": bool(
                        sizes[group] >= rule.min_group_rows
                        and np.isfinite(ratio)
                        and ratio < rule.min_adverse_impact_ratio - RATIO_TOLERANCE
                    ),
                    "adverse_definition": rule.definition,
                }
            )
    return pl.DataFrame(rows, schema=GROUP_SCHEMA)


GROUP_SCHEMA = {
    "attribute": pl.String(),
    "group": pl.String(),
    "rows": pl.Int64(),
    "adverse": pl.Int64(),
    "approval_rate": pl.Float64(),
    "reference_group": pl.String(),
    "approval_rate_gap": pl.Float64(),
    "adverse_impact_ratio": pl.Float64(),
    "mean_pd": pl.Float64(),
    "matured": pl.Int64(),
    "observed_default_rate": pl.Float64(),
    "calibration_gap": pl.Float64(),
    "min_adverse_impact_ratio": pl.Float64(),
    "alert": pl.Boolean(),
    "adverse_definition": pl.String(),
}
