"""When monitoring asks for a retrain, and when a retrain may actually be launched.

``assess`` recommends a retrain, with healthy pipeline signals, on either trigger:

* ``drift``: a feature among the ``top_k`` most important (mean |SHAP| > 0 of the day's
  predictions) has drift status ``drift_status`` or worse (default: ``alert``);
* ``performance``: the champion's matured-label ROC-AUC, pooled (weighted by labelled rows) over
  its vintages of the newest ``decay_window_days``, is below its training-time test ROC-AUC by
  more than ``roc_auc_margin``. Only vintages with ``min_label_coverage`` of their predictions
  labelled count (a young vintage, still short of labels, is not read as a drop), and the window
  needs ``min_labelled`` labelled rows. The decay's onset is the earliest vintage below the
  floor from which the pooled ROC-AUC stays below it. A retrain is useful only once the
  training split holds outcomes from after the onset: while a model trained now would end its
  training rows less than ``min_post_change_training_days`` after it, the trigger is
  *deferred* (reported, with the day it becomes useful), not launched.

A third trigger, ``schedule``, is the retrain job's schedule. A pipeline fault never recommends a
retrain: a model retrained on broken data learns the breakage. Launches (``cooldown_allows``,
``trigger_window``) are at least ``cooldown_days`` as-of days apart, and at most one candidate is
trained per trigger and window of ``cooldown_days`` (the run key), none while a candidate of the
same trigger still waits in ``candidate`` or ``shadow``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, timedelta

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


DRIFT_TRIGGER, PERFORMANCE_TRIGGER, SCHEDULE_TRIGGER = "drift", "performance", "schedule"
TRIGGERS = (DRIFT_TRIGGER, PERFORMANCE_TRIGGER, SCHEDULE_TRIGGER)


@dataclass(frozen=True)
class RetrainPolicy:
    """Thresholds of the retrain decision (see the module docstring)."""

    top_k: int = 10
    drift_status: str = ALERT
    roc_auc_margin: float = 0.05
    min_labelled: int = 200
    min_label_coverage: float = 0.8
    decay_window_days: int = 14
    min_post_change_training_days: int = 14
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
    """A retrain recommendation with its reasons and the triggers that fired, the triggers a
    fault suppressed, and the ones deferred until a retrain could learn from the change."""

    retrain: bool
    reasons: list[str] = field(default_factory=list)
    suppressed: list[str] = field(default_factory=list)
    triggers: list[str] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)


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


@dataclass(frozen=True)
class Decay:
    """A matured-label performance decay of the champion."""

    onset: date
    newest: date
    roc_auc: float
    floor: float
    labelled: int
    vintages: int
    version: str

    def describe(self) -> str:
        return (
            f"performance: pooled ROC-AUC {self.roc_auc:.3f} on the {self.vintages} matured "
            f"vintages up to {self.newest} (v{self.version}, {self.labelled} labels) < training "
            f"floor {self.floor:.3f}; decayed since the {self.onset} vintage"
        )


def usable_vintages(performance: pl.DataFrame, policy: RetrainPolicy) -> pl.DataFrame:
    """The champion's vintages whose labels cover enough of their predictions, oldest first."""
    coverage = (
        pl.col("label_coverage") >= policy.min_label_coverage
        if "label_coverage" in performance.columns
        else pl.lit(True)
    )
    return performance.filter(
        (pl.col("model_alias") == CHAMPION)
        & coverage
        & (pl.col("labelled") > 0)
        & pl.col("roc_auc").is_not_nan()
        & pl.col("training_roc_auc").is_not_nan()
    ).sort("as_of_date")


def _pooled(rows: pl.DataFrame) -> float:
    weights = rows["labelled"].cast(pl.Float64).to_numpy()
    return float((rows["roc_auc"].to_numpy() * weights).sum() / weights.sum())


def performance_decay(
    performance: pl.DataFrame, policy: RetrainPolicy, champion_version: str | None = None
) -> Decay | None:
    """The champion's decay on its newest matured window, with its onset, or None.
    ``champion_version``: the serving champion; vintages of an earlier champion do not count
    (a model just promoted has no matured vintage yet: nothing to read as a decay)."""
    usable = usable_vintages(performance, policy)
    if champion_version is not None:
        usable = usable.filter(pl.col("model_version") == champion_version)
    if not usable.height:
        return None
    version = usable["model_version"][-1]
    usable = usable.filter(pl.col("model_version") == version)
    newest = usable["as_of_date"][-1]
    window = usable.filter(pl.col("as_of_date") > newest - timedelta(days=policy.decay_window_days))
    labelled = int(window["labelled"].sum())
    floor = float(window["training_roc_auc"][-1]) - policy.roc_auc_margin
    if labelled < policy.min_labelled or _pooled(window) >= floor:
        return None
    onset = window["as_of_date"][0]
    # The onset: the earliest vintage below the floor from which the pooled AUC stays below it.
    for start, auc in usable.select("as_of_date", "roc_auc").iter_rows():
        suffix = usable.filter(pl.col("as_of_date") >= start)
        if auc < floor and _pooled(suffix) < floor:
            onset = start
            break
    return Decay(onset, newest, _pooled(window), floor, labelled, window.height, str(version))


def performance_triggers(performance: pl.DataFrame, policy: RetrainPolicy) -> list[str]:
    """The decay of ``performance_decay`` as a trigger line (empty when none)."""
    decay = performance_decay(performance, policy)
    return [decay.describe()] if decay else []


def assess(
    verdict: str,
    drift: pl.DataFrame,
    performance: pl.DataFrame,
    policy: RetrainPolicy,
    *,
    training_end: date | None = None,
    champion_version: str | None = None,
) -> Assessment:
    """The retrain recommendation of one monitoring run (see the module docstring).

    ``training_end``: the last as-of date a model trained now would fit on (None: unknown, a
    decay is then never deferred); ``champion_version``: the champion of the day (only its
    own vintages can show its decay)."""
    drifted = drift_triggers(drift, policy)
    decay = performance_decay(performance, policy, champion_version)
    reasons, triggers, deferred = list(drifted), [DRIFT_TRIGGER] if drifted else [], []
    if decay is not None:
        useful = decay.onset + timedelta(days=policy.min_post_change_training_days)
        if training_end is None or training_end >= useful:
            reasons.append(decay.describe())
            triggers.append(PERFORMANCE_TRIGGER)
        else:
            deferred.append(
                f"{decay.describe()}; retrain deferred: a model trained now fits outcomes up to "
                f"{training_end}, {policy.min_post_change_training_days} days after the onset "
                f"{decay.onset} are needed (about {(useful - training_end).days} more days)"
            )
    if verdict == PIPELINE_FAULT:
        reason = "pipeline fault: fix the upstream data, do not retrain on it"
        return Assessment(False, [reason], reasons + deferred)
    return Assessment(bool(triggers), reasons, [], triggers, deferred)


def trigger_window(as_of: date, cooldown_days: int) -> date:
    """The first day of the ``cooldown_days`` window ``as_of`` falls in (windows counted from
    2000-01-01): one candidate per trigger and window."""
    epoch = date(2000, 1, 1)
    days = (as_of - epoch).days
    return epoch + timedelta(days=days - days % max(cooldown_days, 1))


def cooldown_allows(as_of: date, last_launch: date | None, cooldown_days: int) -> bool:
    """True when no retrain was launched within ``cooldown_days`` as-of days of ``as_of``."""
    return last_launch is None or abs((as_of - last_launch).days) >= cooldown_days
