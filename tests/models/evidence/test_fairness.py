"""Fairness metrics of a small frame against a hand computation."""

from __future__ import annotations

import math

import polars as pl
import pytest

from models.evidence.fairness import FairnessRule, group_fairness

# 10 rows: women 1-5, men 6-9, one applicant of unknown sex. Adverse = bands D or E.
FRAME = pl.DataFrame(
    {
        "score": [0.02, 0.12, 0.30, 0.04, 0.08, 0.01, 0.03, 0.25, 0.06, 0.15],
        "risk_band": ["B", "D", "E", "B", "C", "A", "B", "E", "C", "D"],
        "decision": ["monitor"] * 2 + ["review"] + ["monitor"] * 4 + ["review"] + ["monitor"] * 2,
        "sex": ["female"] * 5 + ["male"] * 4 + [None],
        "_outcome": [0, 1, 1, None, 0, 0, None, 1, 0, None],
    }
)
RULE = FairnessRule(("D", "E"), "review", 0.8, 2)


def _row(frame: pl.DataFrame, group: str) -> dict:
    return frame.filter(pl.col("group") == group).row(0, named=True)


def test_rates_ratio_and_gaps_by_hand() -> None:
    found = group_fairness(FRAME, ["sex"], RULE)
    women, men, unknown = (_row(found, g) for g in ("female", "male", "(unknown)"))
    # Women: 5 rows, 2 adverse (D, E) → approval 3/5; men: 4 rows, 1 adverse → 3/4.
    assert (women["rows"], women["adverse"], women["approval_rate"]) == (5, 2, pytest.approx(0.6))
    assert (men["rows"], men["adverse"], men["approval_rate"]) == (4, 1, pytest.approx(0.75))
    # The unknown group (1 row) is below min_group_rows: never the reference, never alerts.
    assert unknown["rows"] == 1 and unknown["approval_rate"] == 0.0 and not unknown["alert"]
    assert {r["reference_group"] for r in found.iter_rows(named=True)} == {"male"}
    assert women["adverse_impact_ratio"] == pytest.approx(0.6 / 0.75)  # 0.8: not below
    assert women["approval_rate_gap"] == pytest.approx(0.6 - 0.75)
    assert not women["alert"]
    assert women["mean_pd"] == pytest.approx((0.02 + 0.12 + 0.30 + 0.04 + 0.08) / 5)
    # Matured women: rows 1, 2, 3, 5 → defaults 2 of 4; their mean PD (0.02+0.12+0.30+0.08)/4.
    assert women["matured"] == 4
    assert women["observed_default_rate"] == pytest.approx(0.5)
    assert women["calibration_gap"] == pytest.approx((0.02 + 0.12 + 0.30 + 0.08) / 4 - 0.5)
    assert men["matured"] == 3 and men["observed_default_rate"] == pytest.approx(1 / 3)
    assert unknown["matured"] == 0 and unknown["observed_default_rate"] is None


def test_an_alert_below_the_ratio_and_the_decision_rule() -> None:
    strict = FairnessRule((), "review", 0.9, 2)  # adverse = decision 'review'
    found = group_fairness(FRAME, ["sex"], strict)
    women, men = _row(found, "female"), _row(found, "male")
    assert women["approval_rate"] == pytest.approx(4 / 5)
    assert men["approval_rate"] == pytest.approx(3 / 4)
    assert women["reference_group"] == "female"
    assert men["adverse_impact_ratio"] == pytest.approx(0.75 / 0.8)  # 0.9375 >= 0.9
    assert not men["alert"]
    stricter = group_fairness(FRAME, ["sex"], FairnessRule((), "review", 0.95, 2))
    assert _row(stricter, "male")["alert"] and not _row(stricter, "female")["alert"]
    assert _row(stricter, "male")["adverse_definition"] == "decision == 'review'"


def test_no_matured_label_leaves_observed_rates_empty() -> None:
    found = group_fairness(FRAME.with_columns(pl.lit(None).alias("_outcome")), ["sex"], RULE)
    assert found["observed_default_rate"].null_count() == found.height
    assert found["matured"].sum() == 0
    assert not any(math.isnan(v) for v in found["mean_pd"].to_list())
