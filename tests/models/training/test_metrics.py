"""Metrics against independent computations: brute force, scipy, hand-worked examples."""

from __future__ import annotations

import math
from datetime import date, timedelta
from itertools import product

import numpy as np
import polars as pl
import pytest
from scipy.stats import ks_2samp

from models import metrics


@pytest.fixture
def scored() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    y = (rng.random(300) < 0.2).astype(int)
    # Rounded scores create many ties, the case rank-based formulas get wrong most easily.
    p = np.round(np.clip(0.15 + 0.3 * y + rng.normal(0, 0.2, 300), 0, 1), 1)
    return y, p


def test_roc_auc_equals_pairwise_count(scored: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = scored
    pos, neg = p[y == 1], p[y == 0]
    wins = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a, b in product(pos, neg))
    assert metrics.roc_auc(y, p) == pytest.approx(wins / (len(pos) * len(neg)), abs=1e-12)


def test_ks_equals_scipy(scored: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = scored
    expected = ks_2samp(p[y == 1], p[y == 0]).statistic
    assert metrics.ks_statistic(y, p) == pytest.approx(expected, abs=1e-12)


def test_average_precision_equals_threshold_sum(scored: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = scored
    expected, previous_recall = 0.0, 0.0
    for threshold in sorted(set(p), reverse=True):
        chosen = p >= threshold
        recall = y[chosen].sum() / y.sum()
        expected += (recall - previous_recall) * y[chosen].mean()
        previous_recall = recall
    assert metrics.pr_auc(y, p) == pytest.approx(expected, abs=1e-12)


def test_probability_metrics_by_hand() -> None:
    y = np.array([1, 0, 0, 1])
    p = np.array([0.9, 0.2, 0.4, 0.6])
    assert metrics.brier(y, p) == pytest.approx((0.01 + 0.04 + 0.16 + 0.16) / 4)
    expected = -(math.log(0.9) + math.log(0.8) + math.log(0.6) + math.log(0.6)) / 4
    assert metrics.log_loss(y, p) == pytest.approx(expected)
    # Bins of width 0.1: {0.2}: |0-0.2|, {0.4}: |0-0.4|, {0.6}: |1-0.6|, {0.9}: |1-0.9|.
    assert metrics.expected_calibration_error(y, p) == pytest.approx((0.2 + 0.4 + 0.4 + 0.1) / 4)


def test_lift_at_ten_percent() -> None:
    y = np.array([1] + [0] * 9 + [1] * 2 + [0] * 8)  # base rate 3/20
    p = np.linspace(1, 0, 20)  # the top 10 % (2 rows) holds one positive
    assert metrics.lift_at(y, p) == pytest.approx((1 / 2) / (3 / 20))


def test_ranking_metrics_refuse_one_class() -> None:
    with pytest.raises(ValueError, match="both classes"):
        metrics.roc_auc(np.zeros(5), np.linspace(0, 1, 5))


def test_truth_is_joined_on_the_day_before_the_as_of() -> None:
    as_of = date(2025, 3, 10)
    rows = pl.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d"],
            "as_of_date": [as_of] * 4,
            "churned_30d": [1, 0, 1, 0],
            "prediction": [0.2, 0.1, 0.3, 0.4],
        }
    )
    day_before = as_of - timedelta(days=1)
    truth = pl.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d", "a", "b", "c", "d"],
            "as_of_date": [day_before] * 4 + [as_of] * 4,
            # The day-before truth ranks perfectly; the same-day values rank inversely.
            "churn_probability_30d": [0.9, 0.1, 0.8, 0.2, 0.1, 0.9, 0.2, 0.8],
        }
    )
    result = metrics.truth_comparison(
        rows, truth, key="customer_id", label="churned_30d", truth_column="churn_probability_30d"
    )
    assert result["truth_roc_auc"] == 1.0
    assert result["model_roc_auc"] == 0.5
    assert result["rows_matched"] == 4
