"""End to end on the tiny scored world: tables, report, performance by vintage, and an
injected upstream fault diagnosed as a fault, an injected usage shift as population drift."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from dagster import build_sensor_context

from lakehouse.config import scorehouse_home
from models.lifecycle.gate import run_gate
from models.lifecycle.policy import PromotionPolicy
from models.lifecycle.promotion import rollback
from models.lifecycle.registry import ModelRegistry
from models.lifecycle.shadow import matured_shadow_rows
from models.monitoring import inputs
from models.monitoring.diagnosis import null_rate_checks, verdict
from models.monitoring.drift import drift_table
from models.monitoring.monitor import build_report, load_reference
from models.monitoring.policy import (
    PIPELINE_FAULT,
    POPULATION_DRIFT,
    SCORE,
    DiagnosisThresholds,
    MonitoringSettings,
    trigger_window,
)
from models.monitoring.tables import PERFORMANCE_SCHEMA
from orchestration.monitoring.sensor import SensorCursor, retrain_sensor
from orchestration.resources import LakehouseResource, ModelRegistryResource
from tests.models.monitoring.conftest import VINTAGE, run_monitoring
from tests.scored_world import ScoredWorld, train_and_register
from tests.world import churn

pytestmark = pytest.mark.usefixtures("world_home")
CHURN = churn()
FEATURES = CHURN.features.features
MONITORING = CHURN.tables.monitoring
USAGE = [c for c in FEATURES if c.startswith(("active_users", "sessions", "minutes", "events"))]


def test_drift_and_diagnosis_tables(monitored_world: ScoredWorld) -> None:
    lake, day = monitored_world.lake, monitored_world.days[-1]
    drift = lake.read(MONITORING.feature_drift, where=pl.col("as_of_date") == day)
    assert set(drift["feature"]) == {*FEATURES, SCORE}
    assert drift["model_version"].unique().to_list() == [monitored_world.champion]
    assert drift.filter(pl.col("kind") == "numeric")["ks_pvalue"].is_between(0, 1).all()
    categorical = drift.filter(pl.col("kind") == "categorical")
    assert sorted(categorical["feature"]) == ["acquisition_channel", "industry", "plan", "region"]
    assert categorical["chi2_pvalue"].is_between(0, 1).all()
    assert (drift.filter(pl.col("feature") != SCORE)["importance"] >= 0).all()
    diagnosis = lake.read(MONITORING.diagnosis, where=pl.col("as_of_date") == day)
    assert set(diagnosis["check"]) == {
        "row_count",
        "row_alignment",
        "null_rate",
        "schema",
        "freshness",
    }
    assert diagnosis.filter(pl.col("status") == "fault").is_empty(), diagnosis


def test_performance_by_vintage(monitored_world: ScoredWorld) -> None:
    lake = monitored_world.lake
    rows = lake.read(MONITORING.performance)
    row = rows.filter(pl.col("as_of_date") == VINTAGE).row(0, named=True)
    assert row["label_as_of_date"] == VINTAGE + timedelta(days=1)
    assert row["model_alias"] == "champion" and row["model_version"] == monitored_world.champion
    assert 0.8 <= row["label_coverage"] <= 1.0 and row["labelled"] > 30
    tag = monitored_world.registry.version(monitored_world.champion).tags["test_roc_auc"]
    assert row["training_roc_auc"] == pytest.approx(float(tag))
    assert 0 <= row["ece"] <= 1


def test_report_and_verdict(monitored_world: ScoredWorld) -> None:
    day = monitored_world.days[-1]
    verdicts = monitored_world.lake.read(MONITORING.verdicts)
    row = verdicts.filter(pl.col("as_of_date") == day).row(-1, named=True)
    report = Path(row["report_path"])
    reports = scorehouse_home() / "reports" / "monitoring" / "churn"
    folder = reports / str(day) / row["dagster_run_id"]
    assert report == folder / "report.md"
    text = report.read_text()
    for section in (
        "## Verdict",
        "## Feature drift",
        "## Score drift",
        "## Performance by vintage",
        "## Pipeline diagnosis",
        "## Action",
        "(psi.png)",
        "(score.png)",
    ):
        assert section in text
    assert (folder / "psi.png").stat().st_size > 1000
    assert (folder / "score.png").stat().st_size > 1000
    assert row["verdict"] in ("healthy", POPULATION_DRIFT)


def _sensor_context(world: ScoredWorld, cursor: str | None = None):  # type: ignore[no-untyped-def]
    return build_sensor_context(
        cursor=cursor,
        resources={
            "lakehouse": LakehouseResource(uri=str(world.lake.uri)),
            "model_registry": ModelRegistryResource(),
        },
    )


def test_retrain_sensor_launches_on_the_recommendation(monitored_world: ScoredWorld) -> None:
    """A verdict recommending a retrain launches exactly one run of the retrain job, keyed by
    its trigger and window and tagged with them; a second tick with the cursor launches
    nothing; a candidate of that trigger still waiting blocks the next window's launch."""
    world = monitored_world
    day = world.days[-1] + timedelta(days=30)
    row = pl.DataFrame(
        {
            "as_of_date": [day],
            "verdict": ["population_drift"],
            "retrain_recommended": [True],
            "reasons": [["drift: minutes_30d_sum (importance rank 1) PSI 0.900 alert"]],
            "evidence": [["minutes_30d_sum: PSI 0.900 (alert), pipeline checks healthy"]],
            "report_path": ["report.md"],
            "dagster_run_id": ["monitoring-run"],
            "computed_at": [datetime.now(UTC)],
            "triggers": [["drift"]],
            "deferred": [[]],
        },
        schema_overrides={"deferred": pl.List(pl.String)},
    )
    # The sensor has read the world's own verdicts already: only the new row is news.
    seen = world.lake.read(MONITORING.verdicts)["computed_at"].max()
    assert isinstance(seen, datetime)
    read = SensorCursor(seen=seen.isoformat()).dump()
    world.lake.append(MONITORING.verdicts, row)
    sensor = retrain_sensor(CHURN, "churn_weekly_retrain")
    result = sensor(_sensor_context(world, read))
    assert len(result.run_requests) == 1, result.skip_reason
    [request] = result.run_requests
    window = trigger_window(day, CHURN.monitoring.policy.cooldown_days)
    assert request.run_key == f"churn:retrain:drift:{window}"
    assert request.tags["scorehouse/trigger"] == "drift"
    assert request.tags["scorehouse/as_of"] == str(day)
    assert "minutes_30d_sum" in request.tags["scorehouse/reasons"]
    assert SensorCursor.parse(result.cursor).last_launch == str(day)
    again = sensor(_sensor_context(world, result.cursor))
    assert again.run_requests == [] and again.skip_reason is not None
    # The launched run registered a drift candidate that still waits: the next window's
    # recommendation launches nothing.
    version = train_and_register(world.lake, world.registry, CHURN, seed=13)
    world.registry.tag_version(version, {"trigger": "drift", "trigger_as_of": str(day)})
    later = row.with_columns(
        as_of_date=pl.lit(day + timedelta(days=14)), computed_at=pl.lit(datetime.now(UTC))
    )
    world.lake.append(MONITORING.verdicts, later)
    blocked = sensor(_sensor_context(world, result.cursor))
    assert blocked.run_requests == []
    assert f"v{version} (drift) still waiting" in str(blocked.skip_reason)
    world.registry.tag_version(version, {"lifecycle_state": "rejected"})
    world.registry.delete_alias("candidate")


def test_injected_null_fault_is_a_pipeline_fault(monitored_world: ScoredWorld) -> None:
    """40 % of one usage feature nulled upstream, re-scored: fault, evidence, no retrain."""
    world, day = monitored_world, monitored_world.days[0]
    lake = world.lake
    table = "features.customer_activity"
    frame = lake.read(table, where=pl.col("feature_date") == day).with_row_index()
    broken = frame.with_columns(
        pl.when(pl.col("index") % 5 < 2)
        .then(None)
        .otherwise(pl.col("minutes_30d_sum"))
        .alias("minutes_30d_sum")
    ).drop("index")
    lake.replace(table, broken, partition={"feature_date": day})
    world.score(day)  # the new run pins the broken version
    assert run_monitoring(world, day).success
    mlake = lake
    faults = mlake.read(
        MONITORING.diagnosis, where=(pl.col("as_of_date") == day) & (pl.col("status") == "fault")
    )
    assert faults.select("check", "subject").rows() == [("null_rate", "minutes_30d_sum")]
    row = mlake.read(MONITORING.verdicts, where=pl.col("as_of_date") == day).row(-1, named=True)
    assert row["verdict"] == PIPELINE_FAULT and not row["retrain_recommended"]
    assert any("minutes_30d_sum" in line for line in row["evidence"])


def test_usage_shift_is_population_drift(monitored_world: ScoredWorld) -> None:
    """A usage_shift-like change (every usage metric × 3) with healthy pipeline signals."""
    lake, day = monitored_world.lake, monitored_world.days[-1]
    run = inputs.scored_runs(lake, CHURN, [day]).row(0, named=True)
    settings = MonitoringSettings()
    registry = ModelRegistry(CHURN.model_name)
    reference = load_reference(lake, registry, CHURN, run, settings.reference_sample_rows)
    current = inputs.day_features(lake, CHURN, day, inputs.pinned_versions(run))
    shifted = current.with_columns(pl.col(c) * 3 for c in USAGE)
    drift = drift_table(reference.features, shifted, FEATURES).with_columns(
        importance=pl.col("feature").replace_strict(
            inputs.shap_importance(lake, CHURN, run), default=0.0, return_dtype=pl.Float64
        ),
        model_version=pl.lit(run["model_version"]),
        training_set_version=pl.lit(run["training_set_version"]),
    )
    alerts = set(drift.filter(pl.col("status") == "alert")["feature"])
    assert {"minutes_7d_sum", "minutes_30d_sum", "sessions_30d_sum"} <= alerts
    diagnosis = pl.DataFrame(null_rate_checks(drift, DiagnosisThresholds()))
    found, evidence = verdict(diagnosis, drift)
    assert found == POPULATION_DRIFT and any("minutes_30d_sum" in e for e in evidence)
    no_labels = pl.DataFrame(schema={**PERFORMANCE_SCHEMA, "training_roc_auc": pl.Float64})
    report = build_report(day, drift, diagnosis, no_labels, settings, "churn")
    assert report.assessment.retrain == any(
        f in alerts
        for f in drift.filter(pl.col("importance") > 0)
        .sort("importance", descending=True)["feature"]
        .head(10)
    )


def test_the_gate_judges_a_shadow_model_on_paired_matured_labels(
    monitored_world: ScoredWorld,
) -> None:
    """A candidate is admitted into shadow; scored beside the champion on a matured vintage in
    the same run, it is judged on the same customers' outcomes: held while too few rows have
    matured, then decided with its evidence (intervals) recorded."""
    world = monitored_world
    candidate = train_and_register(world.lake, world.registry, CHURN, seed=5)
    admit = PromotionPolicy(evidence="shadow", admission_tolerance=1.0, max_calibration_error=1.0)
    admitted = run_gate(world.registry, world.lake, CHURN, admit)
    assert [(d.challenger_version, d.decision) for d in admitted.decisions] == [
        (candidate, "shadow")
    ]
    assert str(world.registry.alias("shadow").version) == candidate
    assert world.registry.alias("candidate") is None
    # As if it had entered shadow on the vintage: it is scored beside the champion that day.
    world.registry.tag_version(candidate, {"shadow_since": str(VINTAGE)})
    world.score(VINTAGE)
    rows = matured_shadow_rows(world.lake, CHURN, world.champion, candidate)
    predictions = CHURN.tables.scoring.predictions
    vintage_customers = world.lake.read(predictions, where=pl.col("as_of_date") == VINTAGE)[
        "customer_id"
    ].n_unique()
    assert 0 < rows.height <= vintage_customers
    assert set(rows["as_of_date"]) == {VINTAGE}
    labels = world.lake.read(
        CHURN.tables.labels, where=pl.col("as_of_date") == VINTAGE + timedelta(days=1)
    )
    expected = rows.join(labels, on="customer_id", suffix="_label")
    assert (expected["churned_30d"] == expected["churned_30d_label"]).all()
    assert rows["churned_30d"].n_unique() == 2  # the vintage has churners: metrics exist

    strict = PromotionPolicy(
        evidence="shadow", min_shadow_rows=rows.height + 1, min_shadow_days=1, bootstrap_samples=50
    )
    held = run_gate(world.registry, world.lake, CHURN, strict)
    assert held.decisions == [] and f"{rows.height} matured paired rows" in held.held[0]
    assert str(world.registry.alias("champion").version) == world.champion

    lenient = PromotionPolicy(
        evidence="shadow",
        min_shadow_rows=rows.height,
        min_shadow_days=1,
        bootstrap_samples=50,
        roc_auc_margin=-1.0,
        require_significant_gain=False,
        max_calibration_error=1.0,
        max_score_psi=10.0,
    )
    decided = run_gate(world.registry, world.lake, CHURN, lenient)
    promote, retire = decided.decisions
    assert (promote.decision, promote.from_state, promote.to_state) == (
        "promote",
        "shadow",
        "champion",
    )
    assert (retire.challenger_version, retire.to_state) == (world.champion, "retired")
    assert decided.evidence is not None and decided.evidence.rows == rows.height
    auc = decided.evidence.difference["roc_auc"]
    assert auc.low <= auc.estimate <= auc.high
    recorded = world.lake.read(CHURN.tables.decisions).filter(pl.col("decision") == "promote")
    evidence = json.loads(recorded.row(-1, named=True)["evidence"])
    assert evidence["rows"] == rows.height and "criteria" in evidence
    assert str(world.registry.alias("champion").version) == candidate
    assert world.registry.alias("shadow") is None
    rollback(world.registry, world.lake, CHURN, world.champion, reason="back to the test world")


def test_a_quiet_day_records_a_verdict_with_no_reasons(monitored_world: ScoredWorld) -> None:
    """No trigger fires (thresholds out of reach): the verdict row's empty lists are typed.
    (The last day: the first one carries the injected fault of the test above.)"""
    day = monitored_world.days[-1]
    quiet = {
        "drift": {"psi_warn": 50.0, "psi_alert": 100.0, "p_value": 1e-300},
        "policy": {"roc_auc_margin": 1.0},
    }
    assert run_monitoring(monitored_world, day, **quiet).success
    verdicts = monitored_world.lake.read(MONITORING.verdicts)
    row = verdicts.filter(pl.col("as_of_date") == day).sort("computed_at").row(-1, named=True)
    assert row["retrain_recommended"] is False and row["reasons"] == [], row
    assert "no trigger of the retrain policy fired" in Path(row["report_path"]).read_text()
