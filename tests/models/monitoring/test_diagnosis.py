"""Pipeline diagnosis: a null-rate jump is a fault, unless the feature is null by definition."""

from __future__ import annotations

import polars as pl

from models.monitoring.diagnosis import null_rate_checks
from models.monitoring.policy import FAULT, OK, DiagnosisThresholds


def _drift(feature: str, reference: float, current: float) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "feature": [feature],
            "kind": ["numeric"],
            "reference_null_rate": [reference],
            "current_null_rate": [current],
            "current_rows": [2000],
        }
    )


def test_a_null_rate_jump_is_a_pipeline_fault() -> None:
    [check] = null_rate_checks(_drift("minutes_30d_sum", 0.0, 0.4), DiagnosisThresholds())
    assert check["status"] == FAULT and "+40.0%" in str(check["detail"])


def test_a_feature_null_by_definition_drifts_without_a_fault() -> None:
    drift = _drift("amount_mean_30d", 0.15, 0.30)
    [check] = null_rate_checks(drift, DiagnosisThresholds(), nullable={"amount_mean_30d"})
    assert check["status"] == OK
    assert "null by definition" in str(check["detail"])
    [strict] = null_rate_checks(drift, DiagnosisThresholds())
    assert strict["status"] == FAULT
