"""Shared helpers: a churn-like data set and the comparison against xgboost's own outputs.

The references are xgboost's: ``predict(..., output_margin=True)`` (of the estimator when one is
tested, so its own iteration range and ``missing`` apply) and ``pred_contribs`` with the same
iteration range and ``missing``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb

ATOL = 1e-5
SENTINEL = -999.0

CHURN_FEATURES = [
    "tenure_months",
    "monthly_charges",
    "total_charges",
    "contract_code",
    "support_calls_90d",
    "days_since_complaint",
    "data_usage_gb",
    "electronic_payment",
    "senior",
    "n_products",
]


def churn_data(
    n_rows: int = 7_043, *, seed: int = 0, sentinel: float | None = None
) -> pd.DataFrame:
    """A telecom-churn-like frame with informative missing values and a ``churned`` label.

    Missing values are NaN, or ``sentinel`` when given (as a data set exported with ``-999`` for
    missing would have them): total charges of brand-new customers, the days since the last
    complaint of customers who never complained, unrecorded data usage.
    """
    rng = np.random.default_rng(seed)
    tenure = rng.integers(0, 73, n_rows)
    contract = rng.choice(3, n_rows, p=[0.55, 0.25, 0.2])
    monthly = np.round(rng.uniform(18, 120, n_rows), 2)
    total = np.where(tenure == 0, np.nan, tenure * monthly * rng.normal(1, 0.05, n_rows))
    calls = rng.poisson(1.2, n_rows)
    complained = rng.random(n_rows) < 0.45
    since = np.where(complained, rng.integers(1, 365, n_rows), np.nan)
    usage = np.where(rng.random(n_rows) < 0.15, np.nan, rng.lognormal(2.5, 0.8, n_rows))
    electronic = (rng.random(n_rows) < 0.35).astype(float)
    senior = (rng.random(n_rows) < 0.16).astype(float)
    products = rng.integers(1, 6, n_rows)
    logit = (
        0.8
        - 0.05 * tenure
        + 0.015 * (monthly - 65)
        - 1.2 * contract
        + 0.45 * calls
        + np.where(complained, 1.3 - np.nan_to_num(since) / 200, -0.6)
        + 0.6 * electronic
        + 0.3 * senior
        - 0.15 * products
        + np.where(np.isnan(usage), 0.7, -0.02 * np.nan_to_num(usage))
    )
    churned = rng.random(n_rows) < 1 / (1 + np.exp(-logit))
    columns = [tenure, monthly, total, contract, calls, since, usage, electronic, senior]
    columns.append(products)
    frame = pd.DataFrame(dict(zip(CHURN_FEATURES, columns, strict=True))).astype(float)
    if sentinel is not None:
        frame = frame.fillna(sentinel)
    frame["churned"] = churned.astype(int)
    return frame


def split(frame: pd.DataFrame, n_train: int = 5_000) -> tuple[np.ndarray, ...]:
    """``X_train, y_train, X_eval, y_eval`` as numpy arrays."""
    X = frame[CHURN_FEATURES].to_numpy()
    y = frame["churned"].to_numpy()
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]


def xgb_contribs(
    booster: xgb.Booster,
    X: Any,
    iteration_range: tuple[int, int],
    missing: float = np.nan,
) -> tuple[np.ndarray, np.ndarray]:
    """xgboost's pred_contribs and margin over ``iteration_range`` (begin > 0 via slicing)."""
    matrix = xgb.DMatrix(X, missing=missing, feature_names=booster.feature_names)
    margin = booster.predict(matrix, output_margin=True, iteration_range=iteration_range)
    begin, end = iteration_range
    if begin == 0:
        contribs = booster.predict(matrix, pred_contribs=True, iteration_range=iteration_range)
    else:  # pred_contribs supports only ranges from 0; xgboost says to slice the model instead
        contribs = booster[begin:end].predict(matrix, pred_contribs=True)
    return contribs.astype(np.float64), margin.astype(np.float64)


def assert_exact(values: np.ndarray, contribs: np.ndarray, margin: np.ndarray) -> None:
    """Values equal xgboost's contributions and every row adds up to its margin, within 1e-5."""
    assert values.shape == contribs.shape
    contrib_diff = float(np.abs(values - contribs).max())
    additivity = float(np.abs(values.sum(axis=1) - margin).max())
    assert contrib_diff <= ATOL, f"max |ours - pred_contribs| = {contrib_diff:.3g}"
    assert additivity <= ATOL, f"max |row sum - margin| = {additivity:.3g}"


def assert_additive(values: np.ndarray, margin: np.ndarray) -> None:
    """Every row of ``values`` adds up to ``margin`` within 1e-5."""
    additivity = float(np.abs(values.sum(axis=1) - np.asarray(margin, dtype=np.float64)).max())
    assert additivity <= ATOL, f"max |row sum - margin| = {additivity:.3g}"
