"""A fallback to pred_contribs is announced with a warning and still explains the right model
(issue 16, finding 4): same iteration range, same ``missing``, same refusal of ±inf.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest
import xgboost as xgb

from models.explain import ShapInputError, TreeShapExplainer, TreeShapFallbackWarning
from tests.models.explain.reference import (
    CHURN_FEATURES,
    SENTINEL,
    assert_additive,
    assert_exact,
    churn_data,
    split,
    xgb_contribs,
)

TINY_BUDGET = 1024  # bytes: no plan of these models fits


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, ...]:
    return split(churn_data(3000, seed=12), n_train=2000)


def test_fallback_warns(data: tuple[np.ndarray, ...], caplog: pytest.LogCaptureFixture) -> None:
    X_train, y_train, X_eval, _ = data
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 4, "nthread": 1},
        xgb.DMatrix(X_train, y_train),
        10,
    )
    with (
        caplog.at_level(logging.WARNING, logger="models.explain.explainer"),
        pytest.warns(TreeShapFallbackWarning, match="pred_contribs") as record,
    ):
        explainer = TreeShapExplainer(booster, max_table_bytes=TINY_BUDGET)
    assert issubclass(TreeShapFallbackWarning, UserWarning)
    assert len(record) == 1
    assert record[0].filename == __file__  # points at the caller, not at the package
    assert "max_table_bytes=1,024" in str(record[0].message)
    assert explainer.backend == "pred_contribs"
    assert explainer.fallback_reason is not None
    assert "pred_contribs" in caplog.text  # the log line is kept
    assert_exact(explainer.shap_values(X_eval), *xgb_contribs(booster, X_eval, (0, 10)))


def test_no_warning_when_tables_fit(data: tuple[np.ndarray, ...]) -> None:
    X_train, y_train, X_eval, _ = data
    booster = xgb.train({"max_depth": 4, "nthread": 1}, xgb.DMatrix(X_train, y_train), 5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        explainer = TreeShapExplainer(booster)
        explainer.shap_values(X_eval)
    assert explainer.backend == "tables"


def test_fallback_honours_best_iteration(data: tuple[np.ndarray, ...]) -> None:
    X_train, y_train, X_eval, y_eval = data
    model = xgb.XGBClassifier(
        n_estimators=200, max_depth=4, learning_rate=0.4, early_stopping_rounds=10, n_jobs=1
    )
    model.fit(X_train, y_train, eval_set=[(X_eval, y_eval)], verbose=False)
    best = (0, model.best_iteration + 1)
    assert best[1] < model.get_booster().num_boosted_rounds()
    with pytest.warns(TreeShapFallbackWarning):
        explainer = TreeShapExplainer(model, max_table_bytes=TINY_BUDGET)
    assert explainer.iteration_range == best
    values = explainer.shap_values(X_eval)
    assert_additive(values, model.predict(X_eval, output_margin=True))
    assert_exact(values, *xgb_contribs(model.get_booster(), X_eval, best))
    tables = TreeShapExplainer(model).shap_values(X_eval)
    np.testing.assert_allclose(values, tables, rtol=0, atol=1e-5)


def test_fallback_honours_a_window_of_iterations(data: tuple[np.ndarray, ...]) -> None:
    """pred_contribs takes only ranges from 0: a window is explained on the sliced model."""
    X_train, y_train, X_eval, _ = data
    booster = xgb.train({"max_depth": 4, "nthread": 1}, xgb.DMatrix(X_train, y_train), 12)
    with pytest.warns(TreeShapFallbackWarning):
        explainer = TreeShapExplainer(booster, iteration_range=(3, 9), max_table_bytes=TINY_BUDGET)
    values = explainer.shap_values(X_eval)
    assert_exact(values, *xgb_contribs(booster, X_eval, (3, 9)))
    assert explainer.expected_value == pytest.approx(values[0, -1], abs=1e-6)


def test_fallback_honours_missing() -> None:
    frame = churn_data(2500, seed=13, sentinel=SENTINEL)
    X, y = frame[CHURN_FEATURES].to_numpy(), frame["churned"].to_numpy()
    model = xgb.XGBClassifier(n_estimators=15, max_depth=4, missing=SENTINEL, n_jobs=1).fit(X, y)
    with pytest.warns(TreeShapFallbackWarning):
        explainer = TreeShapExplainer(model, max_table_bytes=TINY_BUDGET)
    assert explainer.missing == SENTINEL
    values = explainer.shap_values(X)
    assert_additive(values, model.predict(X, output_margin=True))
    assert_exact(values, *xgb_contribs(model.get_booster(), X, (0, 15), missing=SENTINEL))
    rows = X[:50].copy()
    rows[7, 4] = np.inf
    with pytest.raises(ShapInputError, match=r"column 4\b"):
        explainer.shap_values(rows)
