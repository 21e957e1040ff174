"""TreeShapExplainer must reproduce xgboost's own TreeSHAP (pred_contribs) to 1e-5.

Every case trains a small random model and compares against the independent references:
``booster.predict(..., pred_contribs=True)`` (values and bias), ``output_margin=True``
(additivity) and, once, ``shap.TreeExplainer``. Tree shapes are checked so that each case really
exercises what its name says (repeated features on a path, default-left splits, ...).
"""

from __future__ import annotations

import json
import logging
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numba
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
import shap
import xgboost as xgb

from models.explain import TreeShapExplainer, TreeShapFallbackWarning

ATOL = 1e-5


def _make_data(
    n_rows: int, n_features: int, *, seed: int, nan_rate: float = 0.0, int_features: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Continuous features, then ``int_features`` integer-coded categories; a nonlinear target."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_rows, n_features))
    if int_features:
        X[:, -int_features:] = rng.integers(0, 6, size=(n_rows, int_features))
    used = min(n_features, 6)
    signal = X[:, :used] @ rng.normal(size=used) + np.sin(3 * X[:, 0]) * X[:, used - 1]
    if nan_rate:
        X[rng.random(X.shape) < nan_rate] = np.nan
    signal = signal / signal.std()  # unit-scale margins keep float32 rounding below ATOL
    return X, signal + 0.3 * rng.normal(size=n_rows)


def _train(
    X: np.ndarray, target: np.ndarray, *, objective: str, depth: int, trees: int, **params: Any
) -> xgb.Booster:
    label = (target > np.median(target)).astype(float) if "logistic" in objective else target
    if objective == "count:poisson":
        label = np.exp(np.clip(target, -3, 3) / 2)
    params = {"objective": objective, "max_depth": depth, "eta": 0.3, "nthread": 1, **params}
    return xgb.train(params, xgb.DMatrix(X, label), trees)


def _trees(booster: xgb.Booster) -> list[dict[str, Any]]:
    return json.loads(booster.save_raw("json"))["learner"]["gradient_booster"]["model"]["trees"]


def _max_repeats_on_path(booster: xgb.Booster) -> int:
    """Largest number of splits on one feature along a single root-to-leaf path."""
    best = 0
    for tree in _trees(booster):
        stack: list[tuple[int, tuple[int, ...]]] = [(0, ())]
        while stack:
            node, path = stack.pop()
            if tree["left_children"][node] < 0:
                best = max([best, *(path.count(f) for f in set(path))])
                continue
            path = (*path, tree["split_indices"][node])
            stack += [(tree["left_children"][node], path), (tree["right_children"][node], path)]
    return best


def _assert_exact(explainer: TreeShapExplainer, booster: xgb.Booster, X: np.ndarray) -> np.ndarray:
    """Check values, bias and additivity against xgboost; return our values."""
    matrix = xgb.DMatrix(X, feature_names=booster.feature_names)
    values = explainer.shap_values(X)
    expected = booster.predict(matrix, pred_contribs=True)
    margin = booster.predict(matrix, output_margin=True)
    assert values.dtype == np.float64
    assert values.shape == expected.shape
    np.testing.assert_allclose(values, expected, rtol=0, atol=ATOL)
    # xgboost sums the margin in float32: allow its relative rounding on top of ATOL
    np.testing.assert_allclose(values.sum(axis=1), margin, rtol=1e-6, atol=ATOL)
    if len(values):
        np.testing.assert_allclose(values[:, -1], explainer.expected_value, rtol=0, atol=0)
        assert abs(explainer.expected_value - float(expected[0, -1])) < ATOL
    return values


@dataclass(frozen=True)
class Case:
    name: str
    depth: int
    trees: int
    objective: str = "binary:logistic"
    n_rows: int = 600
    n_features: int = 8
    nan_rate: float = 0.0
    int_features: int = 0
    params: dict[str, Any] = field(default_factory=dict)
    check: Callable[[xgb.Booster], bool] | None = None


CASES = [
    Case("stump", depth=1, trees=1),
    Case("depth2", depth=2, trees=7, objective="reg:squarederror"),
    Case("depth3_base_score_set", depth=3, trees=12, params={"base_score": 0.2}),
    Case("depth4_300_trees", depth=4, trees=300, objective="reg:squarederror", n_rows=1500),
    Case("depth5_poisson", depth=5, trees=20, objective="count:poisson"),
    Case(
        "depth6_nans_default_left",
        depth=6,
        trees=25,
        nan_rate=0.2,
        n_rows=2000,
        check=lambda b: {d for t in _trees(b) for d in t["default_left"]} == {0, 1},
    ),
    Case("depth7_int_codes", depth=7, trees=15, int_features=4, n_rows=2000),
    Case(
        "depth8_feature_reused_on_path",
        depth=8,
        trees=10,
        objective="reg:squarederror",
        n_features=2,
        n_rows=2000,
        check=lambda b: _max_repeats_on_path(b) >= 4,
    ),
    Case(
        "depth8_many_features",
        depth=8,
        trees=8,
        n_features=16,
        n_rows=3000,
        params={"min_child_weight": 0, "colsample_bynode": 0.7},
    ),
    Case(
        "regression_base_score_set",
        depth=4,
        trees=10,
        objective="reg:squarederror",
        params={"base_score": 3.5},
    ),
    Case("reg_logistic", depth=3, trees=10, objective="reg:logistic"),
    Case("absolute_error", depth=3, trees=10, objective="reg:absoluteerror"),
    Case(
        "random_forest",
        depth=4,
        trees=3,
        params={"num_parallel_tree": 4, "subsample": 0.7, "colsample_bynode": 0.6},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_matches_pred_contribs(case: Case) -> None:
    X, target = _make_data(
        case.n_rows,
        case.n_features,
        seed=zlib.crc32(case.name.encode()) % 1000,
        nan_rate=case.nan_rate,
        int_features=case.int_features,
    )
    booster = _train(
        X, target, objective=case.objective, depth=case.depth, trees=case.trees, **case.params
    )
    if case.check is not None:
        assert case.check(booster), f"model of case {case.name} lacks the structure it tests"
    explainer = TreeShapExplainer(booster)
    assert explainer.backend == "tables"
    assert explainer.table_bytes > 0
    _assert_exact(explainer, booster, X)


@pytest.fixture(scope="module")
def nan_model() -> tuple[xgb.Booster, np.ndarray]:
    X, target = _make_data(1500, 10, seed=7, nan_rate=0.1, int_features=3)
    return _train(X, target, objective="binary:logistic", depth=6, trees=30), X


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_float_dtypes(nan_model: tuple[xgb.Booster, np.ndarray], dtype: type) -> None:
    booster, X = nan_model
    _assert_exact(TreeShapExplainer(booster), booster, X.astype(dtype))


def test_integer_input() -> None:
    rng = np.random.default_rng(3)
    X = rng.integers(0, 9, size=(800, 5))
    booster = _train(X, X @ rng.normal(size=5), objective="reg:squarederror", depth=5, trees=10)
    _assert_exact(TreeShapExplainer(booster), booster, X)


def test_single_row_and_zero_rows(nan_model: tuple[xgb.Booster, np.ndarray]) -> None:
    booster, X = nan_model
    explainer = TreeShapExplainer(booster)
    _assert_exact(explainer, booster, X[:1])
    empty = explainer.shap_values(X[:0])
    assert empty.shape == (0, X.shape[1] + 1)


def test_base_score_unset_matches_set_equivalent() -> None:
    X, target = _make_data(600, 6, seed=11)
    for params in ({}, {"base_score": 0.5}, {"base_score": 0.9}):
        booster = _train(X, target, objective="binary:logistic", depth=3, trees=5, **params)
        _assert_exact(TreeShapExplainer(booster), booster, X)


def test_wide_model_with_unused_features() -> None:
    rng = np.random.default_rng(5)
    X = rng.normal(size=(1200, 120))
    booster = _train(
        X, X[:, :40] @ rng.normal(size=40), objective="reg:squarederror", depth=5, trees=20
    )
    values = _assert_exact(TreeShapExplainer(booster), booster, X)
    used = {
        f
        for tree in _trees(booster)
        for f, left in zip(tree["split_indices"], tree["left_children"], strict=True)
        if left >= 0
    }
    unused = sorted(set(range(120)) - used)
    assert unused, "the wide model should leave some features unused"
    assert not values[:, unused].any()


def test_deep_paths_need_wide_masks() -> None:
    """More than 8 distinct features on a path: masks no longer fit in uint8."""
    rng = np.random.default_rng(13)
    X = rng.normal(size=(3000, 16))
    booster = _train(
        X, X.sum(axis=1) / 4, objective="reg:squarederror", depth=11, trees=3, min_child_weight=0
    )
    explainer = TreeShapExplainer(booster)
    assert explainer.backend == "tables"
    assert explainer._plan is not None and explainer._plan.up_clear.dtype == np.uint16
    _assert_exact(explainer, booster, X[:300])  # xgboost's pred_contribs is slow on deep trees


@pytest.mark.parametrize("fold_height", [0, 1, 3])
def test_fold_heights(nan_model: tuple[xgb.Booster, np.ndarray], fold_height: int) -> None:
    booster, X = nan_model
    explainer = TreeShapExplainer(booster, fold_height=fold_height)
    assert explainer.fold_height == fold_height
    _assert_exact(explainer, booster, X)


def test_blocks_and_threads_give_identical_values(
    nan_model: tuple[xgb.Booster, np.ndarray],
) -> None:
    booster, X = nan_model
    X = np.vstack([X] * 2)  # 3000 rows: several parallel chunks, last one partial
    reference = TreeShapExplainer(booster).shap_values(X, n_threads=1)
    before = numba.get_num_threads()
    blocked = TreeShapExplainer(booster, block_rows=1000, n_threads=2).shap_values(X)
    assert numba.get_num_threads() == before
    np.testing.assert_array_equal(blocked, reference)
    _assert_exact(TreeShapExplainer(booster, block_rows=7), booster, X[:50])


def test_agrees_with_shap_tree_explainer(nan_model: tuple[xgb.Booster, np.ndarray]) -> None:
    booster, X = nan_model
    explainer = TreeShapExplainer(booster)
    reference = shap.TreeExplainer(booster)
    ours = explainer.shap_values(X[:300])
    np.testing.assert_allclose(ours[:, :-1], reference.shap_values(X[:300]), rtol=0, atol=ATOL)
    assert abs(explainer.expected_value - float(reference.expected_value)) < ATOL


def test_dataframes_matched_by_name() -> None:
    X, target = _make_data(700, 6, seed=17, nan_rate=0.1)
    names = [f"feat_{i}" for i in range(6)]
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 4, "nthread": 1},
        xgb.DMatrix(X, (target > 0).astype(float), feature_names=names),
        10,
    )
    explainer = TreeShapExplainer(booster)
    assert explainer.feature_names == tuple(names)
    expected = _assert_exact(explainer, booster, X)
    frame = pd.DataFrame(X, columns=names)[names[::-1]]  # columns in another order
    frames = {
        "pandas": frame,
        "pandas_nullable": frame.astype("Float64"),
        "pyarrow": pa.Table.from_pandas(frame, preserve_index=False),
        "polars": pl.from_pandas(frame),
    }
    for kind, data in frames.items():
        np.testing.assert_array_equal(explainer.shap_values(data), expected, err_msg=kind)


def test_model_sources_agree(tmp_path: Any, nan_model: tuple[xgb.Booster, np.ndarray]) -> None:
    booster, X = nan_model
    expected = TreeShapExplainer(booster).shap_values(X[:100])
    json_path = tmp_path / "model.json"
    ubj_path = tmp_path / "model.ubj"
    booster.save_model(json_path)
    booster.save_model(ubj_path)
    raw_json = bytes(booster.save_raw("json"))
    sources = [
        raw_json,
        raw_json.decode(),
        json_path,
        str(ubj_path),
        booster.save_raw("ubj"),
        json.loads(raw_json),
    ]
    for source in sources:
        got = TreeShapExplainer(source).shap_values(X[:100])
        np.testing.assert_array_equal(got, expected, err_msg=type(source).__name__)


def test_sklearn_estimator_accepted() -> None:
    X, target = _make_data(500, 5, seed=19)
    model = xgb.XGBClassifier(n_estimators=8, max_depth=3, n_jobs=1)
    model.fit(X, target > 0)
    _assert_exact(TreeShapExplainer(model), model.get_booster(), X)


def test_over_budget_falls_back_to_pred_contribs(
    nan_model: tuple[xgb.Booster, np.ndarray], caplog: pytest.LogCaptureFixture
) -> None:
    booster, X = nan_model
    with (
        caplog.at_level(logging.WARNING, logger="models.explain.explainer"),
        pytest.warns(TreeShapFallbackWarning, match="max_table_bytes=4,096"),
    ):
        explainer = TreeShapExplainer(booster, max_table_bytes=4096)
    assert explainer.backend == "pred_contribs"
    assert explainer.table_bytes == 0
    assert "max_table_bytes=4,096" in caplog.text
    assert explainer.fallback_reason is not None
    _assert_exact(explainer, booster, X)


def test_budget_reduces_folding_before_falling_back(
    nan_model: tuple[xgb.Booster, np.ndarray],
) -> None:
    booster, X = nan_model
    full = TreeShapExplainer(booster)
    smaller = TreeShapExplainer(booster, max_table_bytes=full.table_bytes - 1)
    assert smaller.backend == "tables"
    assert smaller.fold_height is not None and smaller.fold_height < 2
    assert smaller.table_bytes < full.table_bytes
    _assert_exact(smaller, booster, X)


def test_reports_one_time_costs(nan_model: tuple[xgb.Booster, np.ndarray]) -> None:
    explainer = TreeShapExplainer(nan_model[0])
    assert explainer.build_seconds > 0
    assert explainer.compile_seconds >= 0
    assert explainer.n_features == 10
    assert "tables" in repr(explainer)
