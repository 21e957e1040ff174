"""Monitoring of empty inputs: an empty feature frame, a day without rows, no matured labels,
no scored run — each gives a typed result (the tables' schemas), never an exception, and an
empty day after a populated history is a pipeline fault naming the table."""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import polars as pl

from lakehouse.features.labels import LabelDefinition
from models.monitoring.diagnosis import diagnosis_frame, row_count_checks, verdict
from models.monitoring.drift import drift_table
from models.monitoring.monitor import build_report
from models.monitoring.performance import vintage_performance
from models.monitoring.policy import (
    FAULT,
    HEALTHY,
    OK,
    PIPELINE_FAULT,
    DiagnosisThresholds,
    MonitoringSettings,
)
from models.monitoring.report import psi_png, score_png
from models.monitoring.tables import DIAGNOSIS_CHECK_SCHEMA, DRIFT_SCHEMA, PERFORMANCE_SCHEMA
from tests.world import churn

DAY = date(2025, 3, 1)
POPULATION = "features.customer_activity"
REFERENCE = pl.DataFrame(
    {"logins": np.arange(200, dtype=np.float64), "plan": ["basic", "pro"] * 100}
)


def test_drift_of_an_empty_feature_frame_is_typed_and_not_an_alarm() -> None:
    for current in (REFERENCE.clear(), REFERENCE.clear().drop("plan")):
        drift = drift_table(REFERENCE, current, ["logins", "plan"])
        assert drift.schema == DRIFT_SCHEMA
        assert drift.height == len(current.columns)
        assert drift["current_rows"].to_list() == [0] * drift.height
        assert all(math.isnan(v) for v in drift["psi"]) and set(drift["status"]) == {OK}
    # Both sides empty (a reference that has no rows either) is typed the same.
    assert drift_table(REFERENCE.clear(), REFERENCE.clear(), ["logins"]).schema == DRIFT_SCHEMA


def _counts(today: int) -> pl.DataFrame:
    history = [(POPULATION, DAY - timedelta(days=d), 300) for d in range(1, 8)]
    rows = [*history, *([(POPULATION, DAY, today)] if today else [])]
    return pl.DataFrame(
        rows, schema={"table": pl.String, "feature_date": pl.Date, "rows": pl.Int64}, orient="row"
    )


def test_a_day_without_rows_after_a_populated_history_is_a_pipeline_fault() -> None:
    diagnosis = diagnosis_frame(
        row_count_checks(_counts(0), DAY, POPULATION, DiagnosisThresholds())
    )
    assert diagnosis.schema == DIAGNOSIS_CHECK_SCHEMA
    [fault] = diagnosis.filter(pl.col("status") == FAULT).iter_rows(named=True)
    assert (fault["check"], fault["subject"]) == ("row_count", POPULATION)
    assert fault["detail"].startswith("0 rows vs trailing 7-day median 300")
    found, evidence = verdict(diagnosis, drift_table(REFERENCE, REFERENCE.clear(), ["logins"]))
    assert found == PIPELINE_FAULT and POPULATION in evidence[0]


def test_no_counts_at_all_is_typed_and_healthy() -> None:
    empty = pl.DataFrame(schema={"table": pl.String, "feature_date": pl.Date, "rows": pl.Int64})
    diagnosis = diagnosis_frame(row_count_checks(empty, DAY, POPULATION, DiagnosisThresholds()))
    assert diagnosis.schema == DIAGNOSIS_CHECK_SCHEMA
    assert set(diagnosis["subject"]) == {POPULATION}
    assert verdict(diagnosis, pl.DataFrame(schema=DRIFT_SCHEMA))[0] == HEALTHY


def test_performance_without_predictions_or_labels_is_typed_and_empty() -> None:
    definition: LabelDefinition = churn().label.definition
    key, column = definition.join_key, definition.column
    predictions = pl.DataFrame(
        schema={
            "as_of_date": pl.Date,
            key: pl.String,
            "score": pl.Float64,
            "model_alias": pl.String,
            "model_version": pl.String,
        }
    )
    labels = pl.DataFrame(schema={key: pl.String, "as_of_date": pl.Date, column: pl.Int8})
    performance = vintage_performance(predictions, labels, definition)
    assert performance.is_empty() and performance.schema == PERFORMANCE_SCHEMA


def test_a_report_of_empty_monitoring_rows_renders() -> None:
    # As the report step reads them: the stored tables' rows of the day, none.
    use_case = churn()
    drift, diagnosis, performance = (
        pl.DataFrame(schema=use_case.table_spec(t).polars_schema)
        for t in (
            use_case.tables.monitoring.feature_drift,
            use_case.tables.monitoring.diagnosis,
            use_case.tables.monitoring.performance,
        )
    )
    report = build_report(DAY, drift, diagnosis, performance, MonitoringSettings(), "churn")
    assert report.verdict == HEALTHY and not report.assessment.retrain
    text = report.markdown({})
    assert text.startswith(f"# Monitoring report {DAY}")
    assert "Champion v?" in text
    # The plots of an empty day are images, not errors.
    empty = np.array([], dtype=np.float64)
    for png in (psi_png(drift, MonitoringSettings().drift), score_png(empty, empty)):
        assert png.startswith(b"\x89PNG")
