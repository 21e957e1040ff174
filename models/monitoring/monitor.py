"""One monitoring run, step by step, without Dagster (the assets in ``orchestration/monitoring``
call these): drift and diagnosis of a scored day, performance of matured vintages, the report.

References (per champion version, cached within a run): feature values = the
training-set version the model was trained on (tag ``training_set_version``), sampled
to ``reference_sample_rows``; scores = the model's scores on that set's out-of-time test rows
(see ``inputs.reference_scores``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import polars as pl

from lakehouse.storage import Lakehouse
from models.lifecycle.registry import ModelRegistry
from models.monitoring import inputs
from models.monitoring.diagnosis import (
    diagnosis_frame,
    freshness_checks,
    null_rate_checks,
    row_count_checks,
    schema_checks,
    verdict,
)
from models.monitoring.drift import drift_table, sort_by_severity
from models.monitoring.performance import label_day, latest_matured_vintage, vintage_performance
from models.monitoring.policy import PIPELINE_FAULT, SCORE, MonitoringSettings, assess
from models.monitoring.report import MonitoringReport, psi_png, score_png
from models.training.params import TimeSplit
from models.usecase.spec import UseCase


class MonitoringError(ValueError):
    """Monitoring cannot run for a day: the message says what is missing."""


@dataclass(frozen=True)
class Reference:
    """The training-time distributions a model version is compared against."""

    model_version: str
    training_set_version: int
    features: pl.DataFrame
    scores: np.ndarray


@dataclass(frozen=True)
class DayDrift:
    """Drift and pipeline checks of one scored day."""

    as_of: date
    reference: Reference
    drift: pl.DataFrame
    diagnosis: pl.DataFrame
    current_scores: np.ndarray

    def plots(self, settings: MonitoringSettings) -> dict[str, bytes]:
        return {
            "score": score_png(self.reference.scores, self.current_scores),
            "psi": psi_png(self.drift, settings.drift),
        }


def load_reference(
    lake: Lakehouse,
    registry: ModelRegistry,
    use_case: UseCase,
    run: dict[str, Any],
    sample_rows: int,
) -> Reference:
    """The reference of the scoring run's model version (see the module docstring)."""
    version, ts_version = str(run["model_version"]), int(run["training_set_version"])
    if ts_version < 0:
        raise MonitoringError(f"model v{version} has no training_set_version tag: no reference")
    training_set = inputs.training_reference(lake, use_case, ts_version, sample_rows=sample_rows)
    scores = inputs.reference_scores(registry, use_case, version, training_set)
    return Reference(version, ts_version, training_set, scores)


def _scoring_run(lake: Lakehouse, use_case: UseCase, day: date, alias: str) -> dict[str, Any]:
    runs = inputs.scored_runs(lake, use_case, [day]).filter(pl.col("model_alias") == alias)
    if runs.is_empty():
        raise MonitoringError(
            f"no scoring run with model alias {alias!r} for {day} in "
            f"{use_case.tables.scoring.scoring_runs}: score the day first"
        )
    return runs.row(0, named=True)


def drift_and_diagnosis(
    lake: Lakehouse,
    registry: ModelRegistry,
    use_case: UseCase,
    day: date,
    settings: MonitoringSettings,
    cache: dict[str, Reference] | None = None,
) -> DayDrift:
    """Feature and score drift of ``day``'s current scoring run, and the pipeline checks."""
    run = _scoring_run(lake, use_case, day, settings.model_alias)
    cache = {} if cache is None else cache
    key = str(run["model_version"])
    if key not in cache:
        cache[key] = load_reference(lake, registry, use_case, run, settings.reference_sample_rows)
    reference = cache[key]
    current = inputs.day_features(lake, use_case, day, inputs.pinned_versions(run))
    predictions = inputs.run_predictions(lake, use_case, pl.DataFrame([run]))
    scores = predictions["score"].to_numpy()
    features = drift_table(reference.features, current, use_case.features.features, settings.drift)
    score = drift_table(
        pl.DataFrame({SCORE: reference.scores}),
        pl.DataFrame({SCORE: scores}),
        [SCORE],
        settings.drift,
    ).with_columns(pl.lit("score").alias("kind"))
    importance = inputs.shap_importance(lake, use_case, run)
    drift = sort_by_severity(pl.concat([features, score])).with_columns(
        pl.col("feature")
        .replace_strict(importance, default=None, return_dtype=pl.Float64)
        .alias("importance"),
        pl.lit(reference.model_version).alias("model_version"),
        pl.lit(reference.training_set_version, dtype=pl.Int64).alias("training_set_version"),
    )
    diagnosis = diagnose(lake, use_case, day, drift, settings)
    return DayDrift(day, reference, drift, diagnosis, scores)


def diagnose(
    lake: Lakehouse,
    use_case: UseCase,
    day: date,
    drift: pl.DataFrame,
    settings: MonitoringSettings,
) -> pl.DataFrame:
    """Every pipeline-health check of ``day`` (``diagnosis`` module)."""
    thresholds = settings.diagnosis
    counts = inputs.feature_row_counts(lake, use_case, day, thresholds.trailing_days)
    specs = {t: use_case.table_spec(t) for t in use_case.tables.feature_tables}
    return diagnosis_frame(
        row_count_checks(counts, day, use_case.features.population_table, thresholds)
        + null_rate_checks(drift, thresholds, use_case.quality.nullable)
        + schema_checks(inputs.table_schemas(lake, use_case), specs)
        + freshness_checks(inputs.latest_feature_dates(lake, use_case), day)
    )


def matured_performance(
    lake: Lakehouse,
    registry: ModelRegistry,
    use_case: UseCase,
    partition: date,
    settings: MonitoringSettings,
) -> pl.DataFrame:
    """Performance of the vintages whose labels matured by ``partition`` (the newest
    ``performance_lookback_days`` of them that have labels), every alias and version."""
    definition = use_case.label.definition
    newest = latest_matured_vintage(partition, definition)
    vintages = [newest - timedelta(days=i) for i in range(settings.performance_lookback_days)]
    labels = inputs.matured_labels(lake, use_case, [label_day(v) for v in vintages])
    labelled = {d - timedelta(days=1) for d in labels["as_of_date"].unique().to_list()}
    runs = inputs.scored_runs(lake, use_case, sorted(labelled))
    predictions = inputs.run_predictions(lake, use_case, runs)
    performance = vintage_performance(predictions, labels, definition)
    training = {v: _training_roc_auc(registry, v) for v in performance["model_version"].unique()}
    return performance.with_columns(
        pl.col("model_version")
        .replace_strict(training, default=None, return_dtype=pl.Float64)
        .alias("training_roc_auc")
    )


def _training_roc_auc(registry: ModelRegistry, version: str) -> float:
    """The version's test ROC-AUC at training time (tag ``test_roc_auc``), NaN when absent."""
    try:
        return float((registry.version(version).tags or {}).get("test_roc_auc", "nan"))
    except Exception:  # an unknown version (e.g. deleted) just has no baseline
        return float("nan")


def training_end(use_case: UseCase, day: date) -> date | None:
    """The last as-of date a model trained on ``day`` would fit on: the newest matured label
    (written by partition ``A + maturity − 1``) less the validation, test and gap days of the
    use case's time split; every labelled day for a holdout split."""
    definition = use_case.label.definition
    last = day - timedelta(days=max(definition.maturity_days - 1, 0))
    if use_case.design.split != "time":
        return last
    split = TimeSplit.from_dates(
        last - timedelta(days=100_000), last, use_case.params, definition.horizon_days
    )
    return split.train_end


def build_report(
    as_of: date,
    drift: pl.DataFrame,
    diagnosis: pl.DataFrame,
    performance: pl.DataFrame,
    settings: MonitoringSettings,
    use_case: str = "",
    *,
    trained_until: date | None = None,
    champion_version: str | None = None,
) -> MonitoringReport:
    """Verdict, retrain assessment and the action taken, from the stored monitoring rows.
    ``trained_until``: ``training_end`` of the day (defers a decay a retrain cannot learn yet);
    ``champion_version``: the day's champion (only its own vintages show its decay)."""
    found, evidence = verdict(diagnosis, drift)
    assessment = assess(
        found,
        drift,
        performance,
        settings.policy,
        training_end=trained_until,
        champion_version=champion_version,
    )
    if assessment.retrain:
        action = (
            f"Retrain requested ({', '.join(assessment.triggers)}): the "
            f"`{use_case}_monitoring_retrain` sensor launches job `{use_case}_weekly_retrain`, "
            "which trains a *candidate* for the promotion gate, unless a retrain was launched "
            f"within {settings.policy.cooldown_days} days or a candidate of the same trigger "
            "is still waiting."
        )
    elif assessment.suppressed or found == PIPELINE_FAULT:
        action = (
            "Upstream pipeline fault reported; no retrain. Fix the source data, rebuild the "
            "day's features, re-score and re-run monitoring."
        )
    elif assessment.deferred:
        action = "Retrain deferred until it can learn from the change (see below)."
    else:
        action = "None: no trigger of the retrain policy fired."
    version = str(drift["model_version"][0]) if drift.height else "?"
    ts_version = int(drift["training_set_version"][0]) if drift.height else -1
    return MonitoringReport(
        as_of,
        version,
        ts_version,
        drift,
        diagnosis,
        performance,
        found,
        evidence,
        assessment,
        action,
    )
