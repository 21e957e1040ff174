"""Read an xgboost model (Booster, sklearn wrapper, or its JSON) into plain per-tree arrays.

Only what TreeSHAP needs is kept, and every model this package cannot explain exactly is refused
here with :class:`UnsupportedModelError`, before any table is built.
"""

from __future__ import annotations

import itertools
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb

from models.explain.errors import UnsupportedModelError

# How xgboost turns the stored base_score into the base margin, per objective (checked against
# pred_contribs for xgboost 3.2). Objectives not listed are refused rather than guessed.
_LOGIT_OBJECTIVES = frozenset({"binary:logistic", "reg:logistic"})
_LOG_OBJECTIVES = frozenset(
    {"count:poisson", "reg:gamma", "reg:tweedie", "survival:cox", "survival:aft"}
)
_IDENTITY_OBJECTIVES = frozenset(
    {
        "reg:squarederror",
        "reg:squaredlogerror",
        "reg:pseudohubererror",
        "reg:absoluteerror",
        "reg:quantileerror",
        "binary:logitraw",
        "binary:hinge",
        "rank:pairwise",
        "rank:ndcg",
        "rank:map",
    }
)

ModelSource = xgb.Booster | xgb.XGBModel | str | bytes | bytearray | os.PathLike[str] | Mapping


@dataclass(frozen=True)
class TreeArrays:
    """One regression tree; node ``i`` is an internal node iff ``left[i] >= 0``."""

    left: list[int]
    right: list[int]
    feature: list[int]
    threshold: list[float]  # float32 values: split threshold, or leaf value at a leaf
    default_left: list[int]
    cover: list[float]


@dataclass(frozen=True)
class ParsedModel:
    """The parts of a single-output gbtree model that TreeSHAP needs."""

    trees: list[TreeArrays]
    n_features: int
    feature_names: tuple[str, ...] | None
    base_margin: float
    objective: str
    base_score: float  # as stored (probability scale for the logistic objectives)
    json_text: bytes  # the model as JSON, to rebuild a Booster for the pred_contribs fallback
    # trees of boosting iteration i are trees[iteration_indptr[i]:iteration_indptr[i + 1]]: one
    # iteration adds num_parallel_tree trees (a forest), as xgboost's iteration_range counts them
    iteration_indptr: tuple[int, ...]

    @property
    def num_boosted_rounds(self) -> int:
        """Boosting iterations in the model, as ``Booster.num_boosted_rounds()``."""
        return len(self.iteration_indptr) - 1

    def iterations(self, begin: int, end: int) -> ParsedModel:
        """The model restricted to the trees of iterations ``begin <= i < end``."""
        if not 0 <= begin <= end <= self.num_boosted_rounds:
            raise ValueError(f"iterations [{begin}, {end}) outside [0, {self.num_boosted_rounds}]")
        first, last = self.iteration_indptr[begin], self.iteration_indptr[end]
        indptr = tuple(i - first for i in self.iteration_indptr[begin : end + 1])
        return replace(self, trees=self.trees[first:last], iteration_indptr=indptr)


def load_model(model: ModelSource) -> ParsedModel:
    """Parse ``model`` and refuse anything but a single-output gbtree with numeric splits.

    ``model`` may be an ``xgboost.Booster``, an xgboost sklearn estimator, the model JSON as
    text/bytes/parsed mapping, or a path to a saved model (JSON or UBJSON).
    """
    raw, doc = _model_document(model)
    try:
        learner = doc["learner"]
        booster_doc = learner["gradient_booster"]
    except (KeyError, TypeError) as exc:
        raise UnsupportedModelError(f"not an xgboost model document: missing {exc}") from exc
    name = booster_doc.get("name")
    if name == "dart":
        raise UnsupportedModelError(
            "dart boosters are not supported: dart's prediction drops and rescales trees, so the "
            "fixed-tree explanation would not match the model's output"
        )
    if name != "gbtree":
        raise UnsupportedModelError(
            f"booster {name!r} is not supported: only tree boosters (gbtree) can be explained"
        )
    params = learner["learner_model_param"]
    n_class = int(params.get("num_class", "0"))
    n_target = int(params.get("num_target", "1"))
    objective = learner.get("objective", {}).get("name", "")
    if n_class > 1 or n_target > 1 or objective.startswith("multi:"):
        raise UnsupportedModelError(
            f"multi-output models (objective {objective!r}, num_class={n_class}, "
            f"num_target={n_target}) are not supported; explain single-output models only"
        )
    base_score = _base_score(params["base_score"])
    base_margin = _base_margin(objective, base_score)
    trees = [_tree_arrays(tree) for tree in booster_doc["model"]["trees"]]
    indptr = _iteration_indptr(booster_doc["model"], len(trees))
    names = learner.get("feature_names") or None
    return ParsedModel(
        trees=trees,
        n_features=int(params["num_feature"]),
        feature_names=tuple(names) if names else None,
        base_margin=base_margin,
        objective=objective,
        base_score=base_score,
        json_text=raw,
        iteration_indptr=indptr,
    )


def booster_from_json(json_text: bytes) -> xgb.Booster:
    """A new Booster loaded from model JSON (for the pred_contribs fallback and TreePredictor)."""
    return xgb.Booster(model_file=bytearray(json_text))


def _model_document(model: ModelSource) -> tuple[bytes, Any]:
    """The model as JSON bytes and as parsed JSON, whatever form it came in."""
    if isinstance(model, xgb.XGBModel):
        model = model.get_booster()
    if isinstance(model, xgb.Booster):
        raw = bytes(model.save_raw(raw_format="json"))
    elif isinstance(model, Mapping):
        raw = json.dumps(model).encode()
    elif isinstance(model, str) and model.lstrip().startswith("{"):
        raw = model.encode()
    elif isinstance(model, bytes | bytearray):
        raw = bytes(model)
    elif isinstance(model, str | os.PathLike):
        path = Path(model)
        if not path.is_file():
            raise UnsupportedModelError(f"model file not found: {path}")
        raw = path.read_bytes()
    else:
        raise UnsupportedModelError(
            f"cannot read a model from {type(model).__name__}; pass an xgboost Booster, an "
            "xgboost sklearn estimator, model JSON, or a path to a saved model"
        )
    try:
        return raw, json.loads(raw)
    except ValueError:  # UBJSON (which also starts with "{") or another xgboost format
        raw = _reencode(bytearray(raw))
        return raw, json.loads(raw)


def _reencode(raw: bytearray) -> bytes:
    try:
        return bytes(xgb.Booster(model_file=raw).save_raw(raw_format="json"))
    except xgb.core.XGBoostError as exc:
        raise UnsupportedModelError(f"xgboost cannot load the model: {exc}") from exc


def _base_score(stored: str) -> float:
    # xgboost >= 2 stores a vector such as "[5E-1]"; older models a plain number.
    values = [float(v) for v in str(stored).strip("[] ").split(",") if v.strip()]
    if len(values) != 1:
        raise UnsupportedModelError(f"expected one base_score, found {stored!r}")
    return values[0]


def _base_margin(objective: str, score: float) -> float:
    if objective in _LOGIT_OBJECTIVES:
        return math.log(score / (1.0 - score))
    if objective in _LOG_OBJECTIVES:
        return math.log(score)
    if objective in _IDENTITY_OBJECTIVES:
        return score
    raise UnsupportedModelError(
        f"objective {objective!r} is not supported (its base-margin transform is unknown here)"
    )


def _iteration_indptr(model_doc: Mapping[str, Any], n_trees: int) -> tuple[int, ...]:
    """Tree offsets of the boosting iterations (``iteration_indptr``, xgboost >= 2)."""
    indptr = model_doc.get("iteration_indptr")
    if indptr is None:  # older models: every iteration adds num_parallel_tree trees
        per_iteration = int(model_doc.get("gbtree_model_param", {}).get("num_parallel_tree", 1))
        if per_iteration < 1 or n_trees % per_iteration:
            raise UnsupportedModelError(
                f"{n_trees} trees do not split into iterations of num_parallel_tree={per_iteration}"
            )
        indptr = range(0, n_trees + 1, per_iteration)
    offsets = tuple(int(i) for i in indptr)
    if (
        not offsets
        or offsets[0] != 0
        or offsets[-1] != n_trees
        or any(b < a for a, b in itertools.pairwise(offsets))
    ):
        raise UnsupportedModelError(
            f"iteration_indptr {list(offsets)[:8]}... does not index the model's {n_trees} trees"
        )
    return offsets


def _tree_arrays(tree: dict[str, Any]) -> TreeArrays:
    if int(tree["tree_param"].get("size_leaf_vector", "1")) > 1:
        raise UnsupportedModelError("vector-leaf (multi-target) trees are not supported")
    if any(tree.get("split_type", [])):
        raise UnsupportedModelError(
            "categorical splits (enable_categorical=True) are not supported; train on integer "
            "category codes as numeric features instead"
        )
    return TreeArrays(
        left=tree["left_children"],
        right=tree["right_children"],
        feature=tree["split_indices"],
        threshold=np.asarray(tree["split_conditions"], dtype=np.float32).tolist(),
        default_left=tree["default_left"],
        cover=tree["sum_hessian"],
    )
