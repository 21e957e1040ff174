"""Drift detectors on known distributions: false alarms on identical ones, detection of shifts."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from models.monitoring.drift import (
    categorical_psi,
    chi2_pvalue,
    drift_table,
    ks_test,
    numeric_psi,
    quantile_edges,
)
from models.monitoring.policy import ALERT, OK, WARN, DriftThresholds

REPEATS, N = 200, 2_000


def _pairs(shift: float, seed: int = 7):
    rng = np.random.default_rng(seed)
    for _ in range(REPEATS):
        yield rng.normal(0, 1, N), rng.normal(shift, 1, N)


def test_identical_distributions_rarely_alarm() -> None:
    psi = np.array([numeric_psi(a, b) for a, b in _pairs(0.0)])
    pvalues = np.array([ks_test(a, b)[1] for a, b in _pairs(0.0)])
    assert np.mean(psi > 0.1) < 0.05
    # KS p-values of identical distributions are ~uniform: about 5 % fall below 0.05.
    assert 0.01 <= np.mean(pvalues < 0.05) <= 0.09
    statuses = [DriftThresholds().status(p, q) for p, q in zip(psi, pvalues, strict=True)]
    assert statuses.count(OK) / REPEATS >= 0.99


def test_half_sd_mean_shift_is_detected() -> None:
    results = [(numeric_psi(a, b), ks_test(a, b)[1]) for a, b in _pairs(0.5)]
    psi, pvalues = np.array(results).T
    assert np.all(psi > 0.1)
    assert np.all(pvalues < 0.01)


def test_psi_bins_discrete_features_with_a_point_mass() -> None:
    rng = np.random.default_rng(1)
    reference = np.where(rng.random(5_000) < 0.6, 0, rng.poisson(3, 5_000)).astype(float)
    assert quantile_edges(reference, 10)[0] == 0  # the deciles collapse onto the mass at 0
    same = np.where(rng.random(5_000) < 0.6, 0, rng.poisson(3, 5_000)).astype(float)
    assert numeric_psi(reference, same) < 0.02
    # A value range the reference never saw lands in an empty (smoothed) bin: PSI is finite.
    assert 0.25 < numeric_psi(reference, reference - 10) < np.inf


def test_categorical_chi2_and_psi() -> None:
    rng = np.random.default_rng(3)
    cats = ["starter", "growth", "enterprise"]
    ref = pl.Series(rng.choice(cats, 3_000, p=[0.5, 0.3, 0.2]))
    same = pl.Series(rng.choice(cats, 3_000, p=[0.5, 0.3, 0.2]))
    moved = pl.Series(rng.choice(cats, 3_000, p=[0.3, 0.3, 0.4]))
    assert chi2_pvalue(ref, same) > 0.01
    assert categorical_psi(ref, same) < 0.01
    assert chi2_pvalue(ref, moved) < 1e-6
    assert categorical_psi(ref, moved) > 0.2  # theory: 0.24
    # A category new in the current data counts epsilon on the reference side.
    new = pl.concat([same, pl.Series(["free"] * 300)])
    assert categorical_psi(ref, new) > 0.1
    assert chi2_pvalue(pl.Series(["a"] * 5), pl.Series(["a"] * 5)) == 1.0


def test_drift_table_status_needs_significance() -> None:
    rng = np.random.default_rng(5)
    reference = pl.DataFrame(
        {
            "x": rng.normal(0, 1, 3_000),
            "y": rng.normal(0, 1, 3_000),
            "c": rng.choice(["a", "b"], 3_000),
        }
    )
    current = pl.DataFrame(
        {
            "x": rng.normal(1.0, 1, 3_000),
            "y": rng.normal(0.4, 1, 3_000),
            "c": rng.choice(["a", "b"], 3_000),
        }
    )
    table = drift_table(reference, current, ["x", "y", "c", "absent"])
    assert table["feature"].to_list() == ["x", "y", "c"]  # most severe first
    assert table["status"].to_list() == [ALERT, WARN, OK]
    assert table.filter(pl.col("feature") == "c")["kind"].item() == "categorical"
    # Tiny samples: a large PSI from noise alone is not an alarm without a significant test.
    assert DriftThresholds().status(0.4, 0.2) == OK


@pytest.mark.parametrize("empty", [np.array([]), np.array([np.nan, np.nan])])
def test_empty_sides_give_nan(empty: np.ndarray) -> None:
    assert np.isnan(numeric_psi(np.ones(10), empty))
    assert np.isnan(ks_test(empty, np.ones(10))[0])
