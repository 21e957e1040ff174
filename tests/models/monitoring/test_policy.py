"""Retrain policy and sensor planning: thresholds, importance, cooldown, fault ≠ drift."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest

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
    performance_decay,
    trigger_window,
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


def _verdicts(days: list[int], recommended: list[bool], triggers: list[list[str]]) -> pl.DataFrame:
    stamp = datetime(2025, 3, 10, tzinfo=UTC)
    return pl.DataFrame(
        {
            "as_of_date": [DAY + timedelta(days=i) for i in days],
            "retrain_recommended": recommended,
            "computed_at": [stamp + timedelta(minutes=i) for i in range(len(days))],
            "dagster_run_id": [f"run{i}" for i in range(len(days))],
            "reasons": [[f"{t[0]}: x"] if t else [] for t in triggers],
            "triggers": triggers,
        },
        schema_overrides={"triggers": pl.List(pl.String), "reasons": pl.List(pl.String)},
    )


def test_sensor_plan_launches_once_per_cooldown_and_advances_cursor() -> None:
    verdicts = _verdicts([0, 1, 2, 9], [True, False, True, True], [["drift"]] * 4)
    launches, skipped, cursor = plan_launches(verdicts, SensorCursor(), RetrainPolicy())
    assert [(r.as_of, r.trigger) for r in launches] == [(DAY, "drift")]
    assert len(skipped) == 2 and all("still waiting" in s for s in skipped)
    assert cursor.last_launch == str(DAY)
    # Later, the day-0 candidate decided: day 9 is past the cooldown and launches.
    launched = SensorCursor(last_launch=cursor.last_launch)
    later, skipped, _ = plan_launches(verdicts.tail(1), launched, RetrainPolicy())
    assert [r.as_of for r in later] == [DAY + timedelta(days=9)] and not skipped
    cooled, skipped, _ = plan_launches(verdicts.slice(2, 1), launched, RetrainPolicy())
    assert cooled == [] and "cooldown" in skipped[0]
    again, _, same = plan_launches(verdicts, SensorCursor.parse(cursor.dump()), RetrainPolicy())
    assert not again and same == cursor


def test_one_candidate_per_trigger_window_and_none_while_one_waits() -> None:
    """The run key names the trigger and its window; a waiting candidate of the same trigger
    blocks another, a candidate of another trigger does not; the registry's last launch counts
    for the cooldown."""
    policy = RetrainPolicy(cooldown_days=7)
    verdicts = _verdicts([0, 8], [True, True], [["drift", "performance"], ["performance"]])
    launches, skipped, _ = plan_launches(verdicts, SensorCursor(), policy, pending={"drift": "4"})
    assert [(r.trigger, r.as_of) for r in launches] == [("performance", DAY)]
    assert "vlaunching (performance)" in skipped[0]  # day 8: day 0's candidate still waits
    assert launches[0].window == trigger_window(DAY, 7)
    assert launches[0].run_key("churn") == f"churn:retrain:performance:{trigger_window(DAY, 7)}"
    assert launches[0].tags("churn")["scorehouse/trigger"] == "performance"
    blocked, why, _ = plan_launches(
        verdicts, SensorCursor(), policy, pending={"drift": "4", "performance": "5"}
    )
    assert blocked == [] and all("still waiting" in w for w in why)
    cooled, why, _ = plan_launches(
        verdicts.head(1), SensorCursor(), policy, launched=DAY - timedelta(days=3)
    )
    assert cooled == [] and "cooldown" in why[0]


def test_a_drift_the_champion_copes_with_launches_no_more_candidates() -> None:
    """A drift candidate rejected against the current champion settles drift: drift alone
    launches nothing more, a decay on the same day still launches."""
    policy = RetrainPolicy(cooldown_days=7)
    verdicts = _verdicts([0, 14], [True, True], [["drift"], ["drift", "performance"]])
    launches, why, _ = plan_launches(verdicts, SensorCursor(), policy, settled={"drift": "2"})
    assert [(r.trigger, r.as_of) for r in launches] == [("performance", DAY + timedelta(days=14))]
    assert len(why) == 2 and all("v2 (drift) was rejected against the current" in w for w in why)
    unsettled, _, _ = plan_launches(verdicts.head(1), SensorCursor(), policy)
    assert [r.trigger for r in unsettled] == ["drift"]


def test_trigger_windows_are_fixed_and_cooldown_long() -> None:
    windows = {trigger_window(DAY + timedelta(days=i), 7) for i in range(21)}
    assert len(windows) in (3, 4)
    assert all((w - date(2000, 1, 1)).days % 7 == 0 for w in windows)
    assert trigger_window(DAY, 7) <= DAY < trigger_window(DAY, 7) + timedelta(days=7)


def _vintages(aucs: list[float], coverage: list[float] | None = None) -> pl.DataFrame:
    n = len(aucs)
    return pl.DataFrame(
        {
            "as_of_date": [DAY + timedelta(days=7 * i) for i in range(n)],
            "model_alias": ["champion"] * n,
            "model_version": ["3"] * n,
            "labelled": [1000] * n,
            "label_coverage": coverage or [0.95] * n,
            "roc_auc": aucs,
            "training_roc_auc": [0.80] * n,
        }
    )


def test_decay_is_pooled_over_the_window_and_finds_its_onset() -> None:
    policy = RetrainPolicy(roc_auc_margin=0.03, decay_window_days=14, min_labelled=500)
    decay = performance_decay(_vintages([0.80, 0.79, 0.74, 0.73, 0.72]), policy)
    assert decay is not None
    assert decay.onset == DAY + timedelta(days=14)  # the longest suffix below 0.77
    assert decay.newest == DAY + timedelta(days=28) and decay.vintages == 2
    assert decay.roc_auc == pytest.approx(0.725) and decay.floor == pytest.approx(0.77)
    # One low vintage among good ones is noise the pooled window absorbs.
    assert performance_decay(_vintages([0.80, 0.79, 0.81, 0.80, 0.75]), policy) is None


def test_a_new_champion_is_not_blamed_for_its_predecessor_decay() -> None:
    """The decayed vintages were v3's: with v5 serving (no matured vintage yet) no decay."""
    policy = RetrainPolicy(roc_auc_margin=0.03, decay_window_days=14, min_labelled=500)
    decayed = _vintages([0.80, 0.72, 0.71])
    assert performance_decay(decayed, policy, champion_version="3") is not None
    assert performance_decay(decayed, policy, champion_version="5") is None
    assessed = assess(HEALTHY, _drift([("a", 0.0, "ok", 0.5)]), decayed, policy,
                      champion_version="5")  # fmt: skip
    assert not assessed.retrain and assessed.triggers == []


def test_a_young_vintage_short_of_labels_is_not_a_drop() -> None:
    """The newest vintage, still short of labels (coverage 0.3), reads 0.60: not a decay."""
    policy = RetrainPolicy(roc_auc_margin=0.03, decay_window_days=14, min_label_coverage=0.8)
    young = _vintages([0.80, 0.79, 0.80, 0.60], coverage=[0.95, 0.95, 0.95, 0.3])
    assert performance_decay(young, policy) is None
    mature = _vintages([0.80, 0.79, 0.80, 0.60], coverage=[0.95, 0.95, 0.95, 0.95])
    assert performance_decay(mature, policy) is not None


def test_a_decay_retrain_waits_until_training_can_see_the_change() -> None:
    policy = RetrainPolicy(roc_auc_margin=0.03, min_post_change_training_days=14)
    performance = _vintages([0.80, 0.72, 0.71])
    quiet = _drift([("a", 0.0, "ok", 0.5)])
    onset = DAY + timedelta(days=7)
    early = assess(HEALTHY, quiet, performance, policy, training_end=onset + timedelta(days=5))
    assert not early.retrain and early.triggers == []
    assert "deferred" in early.deferred[0] and "9 more days" in early.deferred[0]
    ready = assess(HEALTHY, quiet, performance, policy, training_end=onset + timedelta(days=14))
    assert ready.retrain and ready.triggers == ["performance"] and not ready.deferred
    fault = assess(PIPELINE_FAULT, quiet, performance, policy, training_end=onset)
    assert not fault.retrain and fault.triggers == [] and fault.suppressed
