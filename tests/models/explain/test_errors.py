"""TreeShapExplainer refuses models and inputs it cannot explain exactly, with a clear message."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.sparse
import xgboost as xgb

from models.explain import ShapInputError, TreeShapExplainer, UnsupportedModelError

N_FEATURES = 4


def _booster(label: np.ndarray | None = None, **params: Any) -> xgb.Booster:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, N_FEATURES))
    y = (X[:, 0] > 0).astype(float) if label is None else label
    return xgb.train({"max_depth": 2, "nthread": 1, **params}, xgb.DMatrix(X, y), 3)


@pytest.fixture(scope="module")
def explainer() -> TreeShapExplainer:
    return TreeShapExplainer(_booster(objective="binary:logistic"))


@pytest.mark.parametrize(
    ("params", "label", "message"),
    [
        ({"booster": "gblinear"}, None, "gblinear"),
        ({"booster": "dart", "rate_drop": 0.5}, None, "dart"),
        ({"objective": "multi:softprob", "num_class": 3}, np.arange(200) % 3, "not supported"),
    ],
    ids=["gblinear", "dart", "multiclass"],
)
def test_unsupported_boosters(params: dict[str, Any], label: Any, message: str) -> None:
    with pytest.raises(UnsupportedModelError, match=message):
        TreeShapExplainer(_booster(label, **params))


def test_categorical_splits_refused() -> None:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"c": pd.Categorical(rng.integers(0, 5, 300)), "x": rng.normal(size=300)})
    label = (frame["c"].cat.codes % 2).to_numpy()
    booster = xgb.train(
        {"max_depth": 2, "nthread": 1}, xgb.DMatrix(frame, label, enable_categorical=True), 3
    )
    with pytest.raises(UnsupportedModelError, match="categorical"):
        TreeShapExplainer(booster)


def test_unknown_objective_refused() -> None:
    doc = json.loads(_booster(objective="reg:squarederror").save_raw("json"))
    doc["learner"]["objective"]["name"] = "reg:made_up"
    with pytest.raises(UnsupportedModelError, match="reg:made_up"):
        TreeShapExplainer(doc)


@pytest.mark.parametrize(
    "model",
    [42, "no/such/model.json", b"not a model"],
    ids=["int", "missing_path", "garbage_bytes"],
)
def test_unreadable_models(model: Any) -> None:
    with pytest.raises(UnsupportedModelError):
        TreeShapExplainer(model)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (np.zeros((3, N_FEATURES + 1)), "5 features but the model expects 4"),
        (np.zeros((3, N_FEATURES - 1)), "3 features but the model expects 4"),
        (np.zeros(N_FEATURES), "2-D"),
        (np.array([["a", "b", "c", "d"]]), "not numeric"),
        (np.array([[1, 2, 3, None]], dtype=object), "not numeric"),
        (np.zeros((2, N_FEATURES), dtype=complex), "not numeric"),
        (scipy.sparse.csr_matrix(np.ones((2, N_FEATURES))), "sparse"),
        (pd.DataFrame({"a": [1.0], "b": [2.0], "c": ["x"], "d": [0.0]}), "column 'c'"),
        (
            pd.DataFrame({"a": [1.0], "b": [2.0], "c": pd.Categorical(["x"]), "d": [0.0]}),
            "column 'c'",
        ),
        (pd.DataFrame(np.zeros((2, 3))), "3 features"),
    ],
    ids=[
        "too_many",
        "too_few",
        "1d",
        "strings",
        "objects",
        "complex",
        "sparse",
        "string_column",
        "category_column",
        "frame_too_narrow",
    ],
)
def test_bad_inputs(explainer: TreeShapExplainer, data: Any, message: str) -> None:
    with pytest.raises(ShapInputError, match=message):
        explainer.shap_values(data)


def test_feature_names_must_match() -> None:
    rng = np.random.default_rng(2)
    names = ["age", "income", "visits"]
    X = rng.normal(size=(100, 3))
    booster = xgb.train(
        {"max_depth": 2, "nthread": 1}, xgb.DMatrix(X, X[:, 0], feature_names=names), 2
    )
    named = TreeShapExplainer(booster)
    wrong = pd.DataFrame(X, columns=["age", "income", "vists"])
    with pytest.raises(ShapInputError, match=r"missing \['visits'\], unexpected \['vists'\]"):
        named.shap_values(wrong)
    extra = pd.DataFrame(np.hstack([X, X[:, :1]]), columns=[*names, "spare"])
    with pytest.raises(ShapInputError, match="unexpected"):
        named.shap_values(extra)


def test_bad_settings(explainer: TreeShapExplainer) -> None:
    with pytest.raises(ValueError, match="n_threads"):
        explainer.shap_values(np.zeros((2, N_FEATURES)), n_threads=0)
    with pytest.raises(ValueError, match="block_rows"):
        TreeShapExplainer(_booster(), block_rows=0)
