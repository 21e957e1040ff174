"""``TreePredictor`` predicts what xgboost predicts, bit for bit, or refuses to be built.

The reference is xgboost's own ``inplace_predict`` on the same rows: compared as float32 bit
patterns, so a difference of one unit in the last place fails.
"""

from __future__ import annotations

import numpy as np
import pytest
import xgboost as xgb

from models.explain import PredictorMismatch, TreePredictor, UnsupportedModelError
from models.explain import predictor as predictor_module
from tests.models.explain.reference import CHURN_FEATURES, churn_data


def _bits(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=np.float32).view(np.uint32)


def _rows(n: int, seed: int) -> np.ndarray:
    """Churn-like rows with NaN where the data has it, and some ±inf."""
    rows = churn_data(n, seed=seed)[CHURN_FEATURES].to_numpy(dtype=np.float64)
    kind = np.random.default_rng(seed).random(rows.shape)
    rows[kind < 0.01] = np.inf
    rows[(kind >= 0.01) & (kind < 0.02)] = -np.inf
    return rows


def _train(objective: str, depth: int, rounds: int, **params: object) -> xgb.Booster:
    frame = churn_data(3_000, seed=1)
    label = frame["churned"].to_numpy(dtype=np.float64)
    if not objective.startswith(("binary:", "reg:logistic")):
        label = label * 3 + frame["tenure_months"].fillna(0).to_numpy() / 12
    data = xgb.DMatrix(frame[CHURN_FEATURES], label=label)
    settings = {"objective": objective, "max_depth": depth, "eta": 0.3, "nthread": 1, **params}
    return xgb.train(settings, data, rounds)


@pytest.mark.parametrize(
    ("objective", "depth", "rounds", "params"),
    [
        ("binary:logistic", 6, 120, {}),
        ("binary:logistic", 3, 40, {"base_score": 0.2}),
        ("binary:logistic", 10, 30, {"num_parallel_tree": 2, "subsample": 0.8}),
        ("reg:logistic", 4, 50, {}),
        ("reg:squarederror", 6, 80, {}),
        ("reg:absoluteerror", 5, 40, {}),
        ("binary:logitraw", 4, 40, {}),
    ],
)
def test_predictions_are_xgboosts_bit_for_bit(
    objective: str, depth: int, rounds: int, params: dict
) -> None:
    booster = _train(objective, depth, rounds, **params)
    rows = _rows(20_000, seed=5)
    predictor = TreePredictor(booster)
    np.testing.assert_array_equal(
        _bits(predictor.predict(rows)), _bits(booster.inplace_predict(rows))
    )
    for one in rows[:200]:  # one row at a time, as a request has it
        expected = booster.inplace_predict(one[None, :])
        assert _bits(predictor.predict(one[None, :])) == _bits(expected)


def test_iteration_range_selects_the_same_trees_as_xgboost() -> None:
    booster = _train("binary:logistic", 5, 60)
    rows = _rows(5_000, seed=6)
    for window in [(0, 1), (10, 25), (59, 60), (0, 0)]:
        predictor = TreePredictor(booster, iteration_range=window)
        expected = booster.inplace_predict(rows, iteration_range=window)
        np.testing.assert_array_equal(_bits(predictor.predict(rows)), _bits(expected))
    assert TreePredictor(booster).iteration_range == (0, 60)


def test_sklearn_estimator_and_other_dtypes() -> None:
    frame = churn_data(2_000, seed=3)
    model = xgb.XGBClassifier(n_estimators=30, max_depth=4, n_jobs=1)
    model.fit(frame[CHURN_FEATURES], frame["churned"])
    rows = frame[CHURN_FEATURES].to_numpy(dtype=np.float32)
    predictor = TreePredictor(model)
    expected = model.get_booster().inplace_predict(rows)
    np.testing.assert_array_equal(_bits(predictor.predict(rows)), _bits(expected))
    whole = np.nan_to_num(rows).astype(np.int64)  # integers are rounded to float32 alike
    expected = model.get_booster().inplace_predict(whole)
    np.testing.assert_array_equal(_bits(predictor.predict(whole)), _bits(expected))


def test_a_wrong_computation_is_caught_when_built(monkeypatch: pytest.MonkeyPatch) -> None:
    """The construction check fails on a base margin one float32 step off: the check, not the
    reasoning, is what makes the predictor trustworthy."""
    booster = _train("binary:logistic", 4, 20)
    right = predictor_module._base_margin32

    def off_by_one_step(parsed):  # type: ignore[no-untyped-def]
        return np.nextafter(right(parsed), np.float32(np.inf))

    monkeypatch.setattr(predictor_module, "_base_margin32", off_by_one_step)
    with pytest.raises(PredictorMismatch, match="differs from xgboost's on"):
        TreePredictor(booster)


def test_check_rows_reach_every_threshold_side() -> None:
    """The generated check rows put values exactly on thresholds and just below them."""
    booster = _train("binary:logistic", 4, 20)
    parsed = predictor_module.load_model(booster)
    rows = predictor_module._check_rows(parsed, 2_048, seed=0)
    tree = parsed.trees[0]
    feature, threshold = tree.feature[0], np.float32(tree.threshold[0])
    column = rows[:, feature].astype(np.float32)
    assert (column == threshold).any()
    assert (column == np.nextafter(threshold, np.float32(-np.inf))).any()
    assert np.isnan(rows).any() and np.isposinf(rows).any() and np.isneginf(rows).any()


def test_unsupported_models_are_refused() -> None:
    with pytest.raises(UnsupportedModelError, match="count:poisson"):
        TreePredictor(_train("count:poisson", 3, 10))
    frame = churn_data(1_000, seed=4).fillna(-999.0)
    model = xgb.XGBClassifier(n_estimators=5, max_depth=3, missing=-999.0, n_jobs=1)
    model.fit(frame[CHURN_FEATURES], frame["churned"])
    with pytest.raises(UnsupportedModelError, match="missing value other than NaN"):
        TreePredictor(model)


def test_wrong_width_is_refused() -> None:
    predictor = TreePredictor(_train("binary:logistic", 3, 5))
    with pytest.raises(ValueError, match=f"{len(CHURN_FEATURES)} features"):
        predictor.predict(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="2-D"):
        predictor.predict(np.zeros(len(CHURN_FEATURES)))
