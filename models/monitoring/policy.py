"""When monitoring asks for a retrain, and when a retrain may actually be launched.

``assess`` recommends a retrain when, with healthy pipeline signals,

* a feature among the ``top_k`` most important (mean |SHAP| > 0 of the day's predictions) has
  drift status ``drift_status`` or worse (default: ``alert``), or
* the champion's ROC-AUC on its newest matured vintage (at least ``min_labelled`` labelled
  rows) is below its training-time test ROC-AUC by more than ``roc_auc_margin``.

A pipeline fault never recommends a retrain: a model retrained on broken data learns the
breakage. ``cooldown_allows`` then keeps launches at least ``cooldown_days`` (as-of days) apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date

import polars as pl

CHAMPION = "champion"
SCORE = "__score__"
"""The drift row of the model's score (beside one row per feature)."""
OK, WARN, ALERT = "ok", "warn", "alert"
SEVERITY = {ALERT: 2, WARN: 1, OK: 0}
FAULT = "fault"
HEALTHY, POPULATION_DRIFT, PIPELINE_FAULT = "healthy", "population_drift", "pipeline_fault"


@dataclass(frozen=True)
class DriftThresholds:
    """PSI levels of a warning and an alert, the test's significance level, the PSI bins."""

    psi_warn: float = 0.1
    psi_alert: float = 0.25
    p_value: float = 0.01
    bins: int = 10
    epsilon: float = 1e-4

    def status(self, psi: float, p_value: float) -> str:
        """``alert``/``warn``/``ok`` from PSI, only when the test is significant."""
        if math.isnan(psi) or not p_value < self.p_value:
            return OK
        if psi >= self.psi_alert:
            return ALERT
        return WARN if psi >= self.psi_warn else OK


@dataclass(frozen=True)
class DiagnosisThresholds:
    """When a pipeline signal counts as a fault."""

    row_count_tolerance: float = 0.3
    null_rate_jump: float = 0.1
    trailing_days: int = 7
    null_rate_sigmas: float = 3.0


@dataclass(frozen=True)
class RetrainPolicy:
    """Thresholds of the retrain decision."""

    top_k: int = 10
    drift_status: str = ALERT
    roc_auc_margin: float = 0.05
    min_labelled: int = 200
    cooldown_days: int = 7


@dataclass(frozen=True)
class MonitoringSettings:
    """Every threshold of a monitoring run (a use case's monitoring policy)."""

    drift: DriftThresholds = field(default_factory=DriftThresholds)
    diagnosis: DiagnosisThresholds = field(default_factory=DiagnosisThresholds)
    policy: RetrainPolicy = field(default_factory=RetrainPolicy)
    reference_sample_rows: int = 200_000
    performance_lookback_days: int = 7
    model_alias: str = CHAMPION


@dataclass(frozen=True)
class Assessment:
    """A retrain recommendation with its reasons, and the triggers a fault suppressed."""

    retrain: bool
    reasons: list[str] = field(default_factory=list)
    suppressed: list[str] = field(default_factory=list)


def drift_triggers(drift: pl.DataFrame, policy: RetrainPolicy) -> list[str]:
    """Important features (top-k by importance) whose drift reached ``policy.drift_status``."""
    # Zero importance: the model never splits on it, its drift cannot move the score.
    features = drift.filter((pl.col("feature") != SCORE) & (pl.col("importance") > 0)).sort(
        pl.col("importance").fill_nan(None), descending=True, nulls_last=True
    )
    top = features.head(policy.top_k).with_row_index("rank", offset=1)
    level = SEVERITY[policy.drift_status]
    hits = top.filter(
        pl.col("status").replace_strict(SEVERITY, default=0, return_dtype=pl.Int64) >= level
    )
    return [
        f"drift: {r['feature']} (importance rank {r['rank']}) PSI {r['psi']:.3f} {r['status']}"
        for r in hits.iter_rows(named=True)
    ]


def performance_triggers(performance: pl.DataFrame, policy: RetrainPolicy) -> list[str]:
    """The champion's newest matured vintage, if its ROC-AUC fell below training − margin."""
    usable = performance.filter(
        (pl.col("model_alias") == CHAMPION)
        & (pl.col("labelled") >= policy.min_labelled)
        & pl.col("roc_auc").is_not_nan()
        & pl.col("training_roc_auc").is_not_nan()
    ).sort("as_of_date")
    if not usable.height:
        return []
    row = usable.row(-1, named=True)
    floor = row["training_roc_auc"] - policy.roc_auc_margin
    if row["roc_auc"] >= floor:
        return []
    return [
        f"performance: ROC-AUC {row['roc_auc']:.3f} on vintage {row['as_of_date']} "
        f"(v{row['model_version']}, {row['labelled']} labels) < training "
        f"{row['training_roc_auc']:.3f} − {policy.roc_auc_margin}"
    ]


def assess(
    verdict: str, drift: pl.DataFrame, performance: pl.DataFrame, policy: RetrainPolicy
) -> Assessment:
    """The retrain recommendation of one monitoring run (see the module docstring)."""
    triggers = drift_triggers(drift, policy) + performance_triggers(performance, policy)
    if verdict == PIPELINE_FAULT:
        reason = "pipeline fault: fix the upstream data, do not retrain on it"
        return Assessment(False, [reason], triggers)
    return Assessment(bool(triggers), triggers)


def cooldown_allows(as_of: date, last_launch: date | None, cooldown_days: int) -> bool:
    """True when no retrain was launched within ``cooldown_days`` as-of days of ``as_of``."""
    return last_launch is None or abs((as_of - last_launch).days) >= cooldown_days
