"""±inf is handled as xgboost's DMatrix (and so its pred_contribs) handles it (issue 16, finding 3).

xgboost 3.2: a DMatrix refuses ±inf, and finite values too large for float32, unless ``missing`` is
±inf ("Input data contains `inf` or a value too large, while `missing` is not set to `inf`"); with
``missing=inf`` the value equal to ``missing`` is missing and the other infinity is an ordinary
(extreme) number. The explainer refuses the same inputs with a ShapInputError naming the column,
and with ``missing=±inf`` matches xgboost's values.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import xgboost as xgb

from models.explain import ShapInputError, TreeShapExplainer
from tests.models.explain.reference import assert_additive, assert_exact, xgb_contribs

NAMES = ["age", "balance", "visits"]


@pytest.fixture(scope="module")
def model() -> tuple[xgb.Booster, np.ndarray]:
    rng = np.random.default_rng(8)
    X = rng.normal(size=(3000, 3))
    X[rng.random(3000) < 0.25, 1] = np.nan  # learn default directions on "balance"
    y = np.nan_to_num(X[:, 1], nan=0.5) + 0.3 * X[:, 0]
    booster = xgb.train({"max_depth": 4, "nthread": 1}, xgb.DMatrix(X, y, feature_names=NAMES), 12)
    return booster, X


def _with(X: np.ndarray, *values: float) -> np.ndarray:
    out = X[:200].copy()
    for i, value in enumerate(values):
        out[10 * i + 3, 1] = value
    return out


@pytest.mark.parametrize(
    "values",
    [(np.inf,), (-np.inf,), (1e300,), (np.inf, -np.inf)],
    ids=["inf", "-inf", "1e300", "both"],
)
def test_infinite_values_refused_like_xgboost(
    model: tuple[xgb.Booster, np.ndarray], values: tuple[float, ...]
) -> None:
    booster, X = model
    rows = _with(X, *values)
    with pytest.raises(xgb.core.XGBoostError, match="inf"):  # xgboost's own TreeSHAP refuses
        booster.predict(xgb.DMatrix(rows, feature_names=NAMES), pred_contribs=True)
    explainer = TreeShapExplainer(booster)
    with pytest.raises(ShapInputError, match=r"'balance'.*row 3\b.*missing"):
        explainer.shap_values(rows)


def test_infinite_values_refused_in_frames(model: tuple[xgb.Booster, np.ndarray]) -> None:
    booster, X = model
    frame = pd.DataFrame(_with(X, np.inf), columns=NAMES)[NAMES[::-1]]
    explainer = TreeShapExplainer(booster)
    for data in (frame, pa.Table.from_pandas(frame, preserve_index=False)):
        with pytest.raises(ShapInputError, match="'balance'"):
            explainer.shap_values(data)


def test_infinite_values_refused_in_later_blocks(model: tuple[xgb.Booster, np.ndarray]) -> None:
    booster, X = model
    rows = X[:200].copy()
    rows[150, 2] = -np.inf
    with pytest.raises(ShapInputError, match=r"'visits'.*row 150\b"):
        TreeShapExplainer(booster, block_rows=64).shap_values(rows)


def test_unnamed_model_names_the_column_by_position() -> None:
    rng = np.random.default_rng(9)
    X = rng.normal(size=(300, 4))
    booster = xgb.train({"max_depth": 2, "nthread": 1}, xgb.DMatrix(X, X[:, 0]), 3)
    X[5, 3] = np.inf
    with pytest.raises(ShapInputError, match=r"column 3\b"):
        TreeShapExplainer(booster).shap_values(X)


def test_estimator_refuses_infinite_values() -> None:
    rng = np.random.default_rng(10)
    X = rng.normal(size=(400, 3))
    model = xgb.XGBClassifier(n_estimators=5, max_depth=2, n_jobs=1).fit(X, X[:, 0] > 0)
    X[0, 0] = np.inf
    with pytest.raises(ShapInputError, match="column 0"):
        TreeShapExplainer(model).shap_values(X)


@pytest.mark.parametrize("missing", [np.inf, -np.inf], ids=["missing_inf", "missing_neg_inf"])
def test_missing_inf_matches_xgboost(model: tuple[xgb.Booster, np.ndarray], missing: float) -> None:
    """``missing=±inf``: that infinity is missing, the other one an extreme value, NaN missing."""
    booster, X = model
    rows = _with(X, np.inf, -np.inf, np.nan, 1e300)
    explainer = TreeShapExplainer(booster, missing=missing)
    values = explainer.shap_values(rows)
    contribs, margin = xgb_contribs(booster, rows, (0, 12), missing=missing)
    assert_exact(values, contribs, margin)
    assert_additive(values, booster.inplace_predict(rows, predict_type="margin", missing=missing))
    # the infinity equal to ``missing`` explains as NaN; the other one as the largest float32
    with np.errstate(over="ignore"):
        rows = rows.astype(np.float32)  # 1e300 rounds to inf, as in a DMatrix
    as_missing = np.where(rows == missing, np.nan, rows)
    np.testing.assert_array_equal(explainer.shap_values(as_missing), values)
    extreme = np.finfo(np.float32).max * np.sign(missing)
    as_number = np.where(np.isinf(rows) & (rows != missing), -extreme, as_missing)
    np.testing.assert_array_equal(TreeShapExplainer(booster).shap_values(as_number), values)


def test_estimator_missing_inf() -> None:
    rng = np.random.default_rng(11)
    X = rng.normal(size=(2000, 3))
    X[rng.random(2000) < 0.2, 2] = np.inf
    # missing values go with the low ones: the left branch, where +inf as a number would not
    y = (np.isinf(X[:, 2]) | (X[:, 2] < -0.5) | (X[:, 0] > 1)).astype(int)
    model = xgb.XGBClassifier(n_estimators=10, max_depth=3, missing=np.inf, n_jobs=1).fit(X, y)
    X[::13, 2] = -np.inf
    values = TreeShapExplainer(model).shap_values(X)
    assert_additive(values, model.predict(X, output_margin=True))
    assert_exact(values, *xgb_contribs(model.get_booster(), X, (0, 10), missing=np.inf))
