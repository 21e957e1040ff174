"""Values equal to the ``missing`` sentinel are missing, as in xgboost (issue 16, finding 2).

xgboost marks a value missing when it is NaN or equals ``missing`` after both are rounded to
float32; an sklearn estimator passes its own ``missing`` to every prediction.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from models.explain import TreeShapExplainer
from tests.models.explain.reference import (
    CHURN_FEATURES,
    SENTINEL,
    assert_additive,
    assert_exact,
    churn_data,
    xgb_contribs,
)


@pytest.fixture(scope="module")
def sentinel_frame() -> pd.DataFrame:
    return churn_data(seed=2, sentinel=SENTINEL)


@pytest.fixture(scope="module")
def sentinel_classifier(sentinel_frame: pd.DataFrame) -> xgb.XGBClassifier:
    model = xgb.XGBClassifier(
        n_estimators=60, max_depth=5, learning_rate=0.2, missing=SENTINEL, n_jobs=1
    )
    return model.fit(sentinel_frame[CHURN_FEATURES], sentinel_frame["churned"])


def test_classifier_missing_sentinel_is_missing(
    sentinel_classifier: xgb.XGBClassifier, sentinel_frame: pd.DataFrame
) -> None:
    model = sentinel_classifier
    X = sentinel_frame[CHURN_FEATURES]
    assert (X.to_numpy() == SENTINEL).any()
    explainer = TreeShapExplainer(model)
    values = explainer.shap_values(X)
    assert_additive(values, model.predict(X, output_margin=True))
    assert_exact(values, *xgb_contribs(model.get_booster(), X, (0, 60), missing=SENTINEL))
    assert explainer.missing == SENTINEL
    # the same rows with the sentinel written as NaN explain identically
    np.testing.assert_array_equal(explainer.shap_values(X.replace(SENTINEL, np.nan)), values)


def test_regressor_missing_sentinel_numpy(sentinel_frame: pd.DataFrame) -> None:
    X = sentinel_frame[CHURN_FEATURES].to_numpy()
    y = X[:, 1] / 10 + np.where(X[:, 5] == SENTINEL, 2.0, 0.0)
    model = xgb.XGBRegressor(n_estimators=30, max_depth=4, missing=SENTINEL, n_jobs=1).fit(X, y)
    values = TreeShapExplainer(model).shap_values(X)
    assert_additive(values, model.predict(X, output_margin=True))
    assert_exact(values, *xgb_contribs(model.get_booster(), X, (0, 30), missing=SENTINEL))


def test_booster_missing_argument(
    sentinel_classifier: xgb.XGBClassifier, sentinel_frame: pd.DataFrame
) -> None:
    """A Booster knows no ``missing``: the argument sets it (NaN by default, as a DMatrix)."""
    booster = sentinel_classifier.get_booster()
    X = sentinel_frame[CHURN_FEATURES].to_numpy()
    default = TreeShapExplainer(booster)
    assert np.isnan(default.missing)
    assert_exact(default.shap_values(X), *xgb_contribs(booster, X, (0, 60)))
    explainer = TreeShapExplainer(booster, missing=SENTINEL)
    assert_exact(explainer.shap_values(X), *xgb_contribs(booster, X, (0, 60), missing=SENTINEL))


def test_argument_overrides_estimator_missing(
    sentinel_classifier: xgb.XGBClassifier, sentinel_frame: pd.DataFrame
) -> None:
    X = sentinel_frame[CHURN_FEATURES].to_numpy()
    explainer = TreeShapExplainer(sentinel_classifier, missing=np.nan)
    assert np.isnan(explainer.missing)
    booster = sentinel_classifier.get_booster()
    assert_exact(explainer.shap_values(X), *xgb_contribs(booster, X, (0, 60)))


def test_nan_stays_missing_with_a_sentinel(
    sentinel_classifier: xgb.XGBClassifier, sentinel_frame: pd.DataFrame
) -> None:
    X = sentinel_frame[CHURN_FEATURES].to_numpy().copy()
    X[::7, 2] = np.nan  # some missing values written as NaN, the others as the sentinel
    model = sentinel_classifier
    values = TreeShapExplainer(model).shap_values(X)
    assert_additive(values, model.predict(X, output_margin=True))
    assert_exact(values, *xgb_contribs(model.get_booster(), X, (0, 60), missing=SENTINEL))


def test_sentinel_compared_in_float32() -> None:
    """0.1 and the nearest float64 above it both round to float32(0.1): both are missing."""
    rng = np.random.default_rng(4)
    X = rng.normal(size=(2000, 3))
    X[rng.random(2000) < 0.3, 0] = 0.1
    X[::11, 0] = np.nextafter(0.1, 1.0)
    booster = xgb.train(
        {"max_depth": 3, "nthread": 1},
        xgb.DMatrix(X, X[:, 0] + (X[:, 0] == 0.1), missing=0.1),
        8,
    )
    explainer = TreeShapExplainer(booster, missing=0.1)
    assert_exact(explainer.shap_values(X), *xgb_contribs(booster, X, (0, 8), missing=0.1))


def test_integer_sentinel_on_integer_input() -> None:
    rng = np.random.default_rng(5)
    X = rng.integers(0, 50, size=(1500, 4))
    X[rng.random(X.shape) < 0.2] = -1
    booster = xgb.train(
        {"max_depth": 4, "nthread": 1},
        xgb.DMatrix(X, (X[:, 0] == -1) + X[:, 1] / 10, missing=-1),
        10,
    )
    explainer = TreeShapExplainer(booster, missing=-1)
    assert explainer.missing == -1.0
    assert_exact(explainer.shap_values(X), *xgb_contribs(booster, X, (0, 10), missing=-1))


def test_input_array_is_not_modified(sentinel_classifier: xgb.XGBClassifier) -> None:
    X = churn_data(500, seed=3, sentinel=SENTINEL)[CHURN_FEATURES].to_numpy(dtype=np.float32)
    before = X.copy()
    TreeShapExplainer(sentinel_classifier).shap_values(np.asfortranarray(X))
    TreeShapExplainer(sentinel_classifier).shap_values(X)
    np.testing.assert_array_equal(X, before)


@pytest.mark.parametrize("missing", ["n/a", None, [1.0]], ids=["string", "none", "list"])
def test_bad_missing_values(missing: object) -> None:
    rng = np.random.default_rng(6)
    X = rng.normal(size=(100, 2))
    booster = xgb.train({"max_depth": 2, "nthread": 1}, xgb.DMatrix(X, X[:, 0]), 2)
    if missing is None:  # None means "not given": NaN for a Booster
        assert np.isnan(TreeShapExplainer(booster, missing=missing).missing)
        return
    with pytest.raises(ValueError, match="missing"):
        TreeShapExplainer(booster, missing=missing)  # type: ignore[arg-type]
