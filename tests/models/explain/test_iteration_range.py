"""The explainer uses the trees that prediction uses (issue 16, finding 1).

An xgboost sklearn estimator predicts with the trees up to its ``best_iteration`` when it was
trained with early stopping (or with an explicit ``iteration_range``); ``Booster.predict`` uses
every tree unless given an ``iteration_range``, even when the Booster carries a
``best_iteration`` attribute. Each case is checked against xgboost's own margin and
``pred_contribs`` over the same range.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import xgboost as xgb

from models.explain import TreeShapExplainer
from tests.models.explain.reference import (
    assert_additive,
    assert_exact,
    churn_data,
    split,
    xgb_contribs,
)

ESTIMATOR_PARAMS: dict[str, Any] = {
    "n_estimators": 300,
    "max_depth": 4,
    "learning_rate": 0.3,
    "n_jobs": 1,
    "random_state": 0,
}


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, ...]:
    return split(churn_data(seed=1))


@pytest.fixture(scope="module")
def early_stopped_classifier(data: tuple[np.ndarray, ...]) -> xgb.XGBClassifier:
    X_train, y_train, X_eval, y_eval = data
    model = xgb.XGBClassifier(**ESTIMATOR_PARAMS, early_stopping_rounds=20)
    model.fit(X_train, y_train, eval_set=[(X_eval, y_eval)], verbose=False)
    # the case is only meaningful when trees after the best iteration exist
    assert model.best_iteration + 1 < model.get_booster().num_boosted_rounds()
    return model


@pytest.fixture(scope="module")
def early_stopped_booster(data: tuple[np.ndarray, ...]) -> xgb.Booster:
    X_train, y_train, X_eval, y_eval = data
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 4, "eta": 0.3, "nthread": 1},
        xgb.DMatrix(X_train, y_train),
        300,
        evals=[(xgb.DMatrix(X_eval, y_eval), "eval")],
        early_stopping_rounds=20,
        verbose_eval=False,
    )
    assert booster.best_iteration + 1 < booster.num_boosted_rounds()
    return booster


def test_early_stopped_classifier_uses_best_iteration(
    early_stopped_classifier: xgb.XGBClassifier, data: tuple[np.ndarray, ...]
) -> None:
    model, X = early_stopped_classifier, data[2]
    explainer = TreeShapExplainer(model)
    values = explainer.shap_values(X)
    assert_additive(values, model.predict(X, output_margin=True))
    best = (0, model.best_iteration + 1)
    assert_exact(values, *xgb_contribs(model.get_booster(), X, best))
    assert explainer.iteration_range == best


def test_early_stopped_regressor_uses_best_iteration(data: tuple[np.ndarray, ...]) -> None:
    X_train, _, X_eval, _ = data
    # regress the monthly charges, scaled to unit size: xgboost sums the margin in float32, whose
    # rounding on margins near 10 alone would approach the 1e-5 tolerance
    noise = np.random.default_rng(3).normal(scale=0.5, size=len(X_train) + len(X_eval))
    target = (np.vstack([X_train, X_eval])[:, 1] - 65) / 30 + noise
    y_train, y_eval = target[: len(X_train)], target[len(X_train) :]
    model = xgb.XGBRegressor(**ESTIMATOR_PARAMS, early_stopping_rounds=10)
    model.fit(X_train, y_train, eval_set=[(X_eval, y_eval)], verbose=False)
    assert model.best_iteration + 1 < model.get_booster().num_boosted_rounds()
    explainer = TreeShapExplainer(model)
    values = explainer.shap_values(X_eval)
    assert_additive(values, model.predict(X_eval, output_margin=True))
    best = (0, model.best_iteration + 1)
    assert_exact(values, *xgb_contribs(model.get_booster(), X_eval, best))
    assert explainer.iteration_range == best


def test_estimator_without_early_stopping_uses_every_tree(data: tuple[np.ndarray, ...]) -> None:
    X_train, y_train, X_eval, _ = data
    model = xgb.XGBClassifier(**{**ESTIMATOR_PARAMS, "n_estimators": 40}).fit(X_train, y_train)
    explainer = TreeShapExplainer(model)
    assert explainer.iteration_range == (0, 40)
    assert explainer.num_boosted_rounds == 40
    values = explainer.shap_values(X_eval)
    assert_additive(values, model.predict(X_eval, output_margin=True))
    assert_exact(values, *xgb_contribs(model.get_booster(), X_eval, (0, 40)))


@pytest.mark.parametrize(
    ("requested", "effective"),
    [((0, 5), (0, 5)), ((3, 9), (3, 9)), ((4, 0), None), (None, None)],
    ids=["prefix", "window", "end_0_means_best", "default"],
)
def test_estimator_explicit_iteration_range_as_predict(
    early_stopped_classifier: xgb.XGBClassifier,
    data: tuple[np.ndarray, ...],
    requested: tuple[int, int] | None,
    effective: tuple[int, int] | None,
) -> None:
    """The argument means what it means to ``XGBModel.predict``: an end of 0 is the default."""
    model, X = early_stopped_classifier, data[2]
    explainer = TreeShapExplainer(model, iteration_range=requested)
    expected_range = effective or (0, model.best_iteration + 1)
    assert explainer.iteration_range == expected_range
    values = explainer.shap_values(X)
    assert_additive(values, model.predict(X, output_margin=True, iteration_range=requested))
    assert_exact(values, *xgb_contribs(model.get_booster(), X, expected_range))


def test_estimator_loaded_from_file_keeps_best_iteration(
    early_stopped_classifier: xgb.XGBClassifier, data: tuple[np.ndarray, ...], tmp_path: Any
) -> None:
    path = tmp_path / "model.json"
    early_stopped_classifier.save_model(path)
    model = xgb.XGBClassifier()
    model.load_model(path)
    X = data[2]
    explainer = TreeShapExplainer(model)
    assert_additive(explainer.shap_values(X), model.predict(X, output_margin=True))
    assert explainer.iteration_range == (0, early_stopped_classifier.best_iteration + 1)


def test_booster_uses_every_tree_like_booster_predict(
    early_stopped_booster: xgb.Booster, data: tuple[np.ndarray, ...]
) -> None:
    """``Booster.predict`` ignores the ``best_iteration`` attribute: so does the explainer."""
    booster, X = early_stopped_booster, data[2]
    explainer = TreeShapExplainer(booster)
    rounds = booster.num_boosted_rounds()
    assert explainer.iteration_range == (0, rounds)
    values = explainer.shap_values(X)
    assert_additive(values, booster.predict(xgb.DMatrix(X), output_margin=True))
    assert_exact(values, *xgb_contribs(booster, X, (0, rounds)))
    # the same model as JSON, whose attributes still hold best_iteration
    assert TreeShapExplainer(booster.save_raw("json")).iteration_range == (0, rounds)


@pytest.mark.parametrize("window", ["best", "middle", "empty"])
def test_booster_iteration_range_argument(
    early_stopped_booster: xgb.Booster, data: tuple[np.ndarray, ...], window: str
) -> None:
    booster, X = early_stopped_booster, data[2]
    best = booster.best_iteration + 1
    iteration_range = {"best": (0, best), "middle": (3, best - 2), "empty": (4, 4)}[window]
    explainer = TreeShapExplainer(booster, iteration_range=iteration_range)
    assert explainer.iteration_range == iteration_range
    values = explainer.shap_values(X)
    margin = booster.predict(xgb.DMatrix(X), output_margin=True, iteration_range=iteration_range)
    assert_additive(values, margin)
    if window == "empty":  # no trees: no contribution, the bias is the base margin
        assert not values[:, :-1].any()
        np.testing.assert_allclose(values[:, -1], margin, rtol=0, atol=1e-6)
    else:
        assert_exact(values, *xgb_contribs(booster, X, iteration_range))


def test_sliced_booster(early_stopped_booster: xgb.Booster, data: tuple[np.ndarray, ...]) -> None:
    booster, X = early_stopped_booster, data[2]
    best = booster.best_iteration + 1
    for begin, end in [(0, best), (2, 6)]:
        sliced = booster[begin:end]
        explainer = TreeShapExplainer(sliced)
        assert explainer.iteration_range == (0, end - begin)
        values = explainer.shap_values(X)
        assert_exact(values, *xgb_contribs(sliced, X, (0, 0)))
        ranged = TreeShapExplainer(booster, iteration_range=(begin, end)).shap_values(X)
        np.testing.assert_allclose(values, ranged, rtol=0, atol=1e-12)


def test_forest_iterations_are_layers_of_parallel_trees(data: tuple[np.ndarray, ...]) -> None:
    """With ``num_parallel_tree=3`` one iteration is three trees, as xgboost counts them."""
    X_train, y_train, X_eval, _ = data
    params = {
        "objective": "binary:logistic",
        "max_depth": 3,
        "num_parallel_tree": 3,
        "subsample": 0.7,
        "colsample_bynode": 0.7,
        "nthread": 1,
    }
    booster = xgb.train(params, xgb.DMatrix(X_train, y_train), 6)
    for iteration_range in [(0, 4), (2, 5), (0, 0)]:
        explainer = TreeShapExplainer(booster, iteration_range=iteration_range)
        effective = iteration_range if iteration_range[1] else (0, 6)
        assert explainer.iteration_range == effective
        values = explainer.shap_values(X_eval)
        assert_exact(values, *xgb_contribs(booster, X_eval, effective))

    model = xgb.XGBRFClassifier(n_estimators=4, max_depth=3, n_jobs=1).fit(X_train, y_train)
    explainer = TreeShapExplainer(model)
    assert explainer.iteration_range == (0, 1)
    assert_additive(explainer.shap_values(X_eval), model.predict(X_eval, output_margin=True))


@pytest.mark.parametrize(
    ("iteration_range", "message"),
    [
        ((0, 11), "out of range"),
        ((0, 100), "out of range"),
        ((6, 3), "begin"),
        ((-1, 3), "non-negative"),
        ((0, 2.5), "integers"),
        ((1, 2, 3), "pair"),
        ("0:3", "pair"),
    ],
)
def test_bad_iteration_ranges(iteration_range: Any, message: str) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    booster = xgb.train({"max_depth": 2, "nthread": 1}, xgb.DMatrix(X, X[:, 0]), 10)
    with pytest.raises(ValueError, match=message):
        TreeShapExplainer(booster, iteration_range=iteration_range)
    if iteration_range in [(0, 11), (0, 100), (6, 3)]:  # xgboost refuses these too
        with pytest.raises(xgb.core.XGBoostError):
            booster.predict(xgb.DMatrix(X), iteration_range=iteration_range)
