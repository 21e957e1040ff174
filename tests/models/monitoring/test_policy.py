"""Retrain policy and sensor planning: thresholds, importance, cooldown, fault ≠ drift."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import polars as pl

from models.monitoring.diagnosis import diagnosis_frame, row_count_checks, verdict
from models.monitoring.policy import (
    FAULT,
    HEALTHY,
    PIPELINE_FAULT,
    POPULATION_DRIFT,
    DiagnosisThresholds,
    RetrainPolicy,
    assess,
    cooldown_allows,
)
from orchestration.monitoring.sensor import SensorCursor, plan_launches

DAY = date(2025, 3, 1)


def _drift(rows: list[tuple[str, float, str, float]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows, schema=["feature", "psi", "status", "importance"], orient="row"
    ).with_columns(kind=pl.lit("numeric"))


def _performance(roc_auc: float, labelled: int = 500, training: float = 0.80) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "as_of_date": [DAY],
            "model_alias": ["champion"],
            "model_version": ["3"],
            "labelled": [labelled],
            "roc_auc": [roc_auc],
            "training_roc_auc": [training],
        }
    )


NO_PERF = _performance(0.80)
POLICY = RetrainPolicy(top_k=2)


def test_alert_on_an_important_feature_recommends_a_retrain() -> None:
    drift = _drift([("a", 0.4, "alert", 0.5), ("b", 0.0, "ok", 0.3), ("c", 0.9, "alert", 0.1)])
    result = assess(POPULATION_DRIFT, drift, NO_PERF, POLICY)
    assert result.retrain and result.reasons == ["drift: a (importance rank 1) PSI 0.400 alert"]


def test_drift_outside_top_k_or_only_warn_or_unused_does_not() -> None:
    drift = _drift(
        [
            ("a", 0.15, "warn", 0.5),
            ("b", 0.0, "ok", 0.3),
            ("c", 0.9, "alert", 0.1),
            ("d", 2.0, "alert", 0.0),
        ]
    )
    assert not assess(POPULATION_DRIFT, drift, NO_PERF, POLICY).retrain
    warn_policy = RetrainPolicy(top_k=2, drift_status="warn")
    assert assess(POPULATION_DRIFT, drift, NO_PERF, warn_policy).retrain


def test_matured_auc_below_training_margin() -> None:
    quiet = _drift([("a", 0.0, "ok", 0.5)])
    assert assess(HEALTHY, quiet, _performance(0.74), POLICY).retrain  # 0.80 − 0.05 = 0.75
    assert not assess(HEALTHY, quiet, _performance(0.76), POLICY).retrain
    assert not assess(HEALTHY, quiet, _performance(0.60, labelled=50), POLICY).retrain


def test_pipeline_fault_never_recommends_but_keeps_the_triggers() -> None:
    drift = _drift([("a", 0.4, "alert", 0.5)])
    result = assess(PIPELINE_FAULT, drift, _performance(0.5), POLICY)
    assert not result.retrain
    assert "pipeline fault" in result.reasons[0] and len(result.suppressed) == 2


def test_half_the_customers_missing_is_a_fault_not_drift() -> None:
    days = [DAY - timedelta(days=i) for i in range(8)]
    counts = pl.DataFrame(
        [
            (t, d, 500 if d == DAY and t == "features.a" else 1000)
            for t in ("features.a", "features.b")
            for d in days
        ],
        schema=["table", "feature_date", "rows"],
        orient="row",
    )
    diagnosis = diagnosis_frame(row_count_checks(counts, DAY, "features.a", DiagnosisThresholds()))
    faults = diagnosis.filter(pl.col("status") == FAULT)
    assert faults.select("check", "subject").rows() == [
        ("row_alignment", "features.b"),
        ("row_count", "features.a"),
    ]
    drift = _drift([("a", 0.4, "alert", 0.5)])
    found, evidence = verdict(diagnosis, drift)
    assert found == PIPELINE_FAULT and any("-50%" in line for line in evidence)
    assert verdict(diagnosis.filter(pl.col("status") != FAULT), drift)[0] == POPULATION_DRIFT


def test_cooldown() -> None:
    assert cooldown_allows(DAY, None, 7)
    assert not cooldown_allows(DAY, DAY - timedelta(days=6), 7)
    assert cooldown_allows(DAY, DAY - timedelta(days=7), 7)


def test_sensor_plan_launches_once_per_cooldown_and_advances_cursor() -> None:
    stamp = datetime(2025, 3, 10, tzinfo=UTC)
    verdicts = pl.DataFrame(
        {
            "as_of_date": [DAY + timedelta(days=i) for i in (0, 1, 2, 9)],
            "retrain_recommended": [True, False, True, True],
            "computed_at": [stamp + timedelta(minutes=i) for i in range(4)],
            "dagster_run_id": list("abcd"),
            "reasons": [["drift"]] * 4,
        }
    )
    launches, skipped, cursor = plan_launches(verdicts, SensorCursor(), 7)
    assert [r["as_of_date"] for r in launches] == [DAY, DAY + timedelta(days=9)]
    assert len(skipped) == 1 and cursor.last_launch == str(DAY + timedelta(days=9))
    again, _, same = plan_launches(verdicts, SensorCursor.parse(cursor.dump()), 7)
    assert not again and same == cursor
