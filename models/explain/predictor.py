"""``TreePredictor``: xgboost's own prediction of a few rows, bit for bit, in a tenth of the time.

``Booster.inplace_predict`` spends about half a millisecond on one row of 200 trees with warm
caches, and about three times that when the row comes alone, as an app's request does; the
walk down the trees takes some 20 microseconds of it, the rest is the call's own machinery. The
predictor walks the trees that ``load_model`` reads for TreeSHAP in a numba kernel and does
xgboost's arithmetic (3.2) in xgboost's order, so the result is the same
float32 value, not an approximation of it:

- a value is rounded to float32; NaN follows the node's default direction, any other value
  goes left when ``value < threshold`` (so +inf goes right of every threshold, -inf left);
- the margin starts at the base margin in float32 (``-logf(1 / base_score - 1)`` for the
  logistic objectives, ``base_score`` for the identity ones) and adds each tree's float32 leaf
  value, tree by tree, in float32;
- the logistic objectives end with xgboost's ``common::Sigmoid`` in float32:
  ``1 / (expf(min(-margin, 88.7)) + 1 + 1e-16)``.

Reasoning is not trusted alone: the constructor predicts ``check_rows`` rows with both and
raises :class:`PredictorMismatch` unless every output is bit-identical. The rows are drawn
around the model's own thresholds (each value exactly at a threshold, a float32 step below it,
between thresholds, missing, or ±inf).

Supported: single-output ``gbtree`` models with numeric splits (as the explainer) whose
objective is logistic (``binary:logistic``, ``reg:logistic``) or has an identity output
(``reg:squarederror``, ``reg:absoluteerror``, ``reg:pseudohubererror``, ``binary:logitraw``),
with NaN as the only missing value. Anything else raises :class:`UnsupportedModelError`: use
xgboost's ``predict`` for it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numba as nb
import numpy as np
import xgboost as xgb

from models.explain._prediction import iteration_range_of, missing_of
from models.explain._xgb_model import ModelSource, ParsedModel, booster_from_json, load_model
from models.explain.errors import UnsupportedModelError

LOGISTIC = frozenset({"binary:logistic", "reg:logistic"})
IDENTITY = frozenset(
    {"reg:squarederror", "reg:absoluteerror", "reg:pseudohubererror", "binary:logitraw"}
)
DEFAULT_CHECK_ROWS = 2_048

NODE = np.dtype(
    [("left", np.int32), ("right", np.int32), ("missing", np.int32), ("feature", np.int32),
     ("value", np.float32)]
)  # fmt: skip
"""One record per node, its fields read together by the walk. ``left < 0`` marks a leaf, whose
``value`` is the leaf value (else the split threshold); ``missing`` is the default child."""


class PredictorMismatch(UnsupportedModelError):
    """The compiled walk and xgboost disagreed on a check row: the predictor is not used."""


class TreePredictor:
    """Predicts exactly what ``booster.inplace_predict(X, iteration_range=...)`` predicts.

    ``predict(X)`` takes a 2-D array of the model's features (any real dtype) and returns
    float32, one value per row, as ``inplace_predict`` does. It runs in the calling thread and
    holds no lock (numba ``nogil``), so it may be called from several threads at once.
    """

    def __init__(
        self,
        model: ModelSource,
        *,
        iteration_range: Sequence[int] | None = None,
        check_rows: int = DEFAULT_CHECK_ROWS,
    ) -> None:
        parsed = load_model(model)
        self.iteration_range = iteration_range_of(model, iteration_range, parsed.num_boosted_rounds)
        parsed = parsed.iterations(*self.iteration_range)
        if parsed.objective not in LOGISTIC | IDENTITY:
            raise UnsupportedModelError(
                f"objective {parsed.objective!r}: the compiled prediction supports "
                f"{sorted(LOGISTIC | IDENTITY)}; use xgboost's predict"
            )
        if not math.isnan(missing_of(model, None)):
            raise UnsupportedModelError(
                "a missing value other than NaN is not supported; use xgboost's predict"
            )
        self.n_features = parsed.n_features
        self.objective = parsed.objective
        self._nodes, self._roots = _flatten(parsed)
        self._base = _base_margin32(parsed)
        self._logistic = parsed.objective in LOGISTIC
        self._verify(model, parsed, _check_rows(parsed, check_rows, seed=0))

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The model's predictions of the rows of ``X`` (float32, as ``inplace_predict``)."""
        rows = np.asarray(X)
        if rows.ndim != 2 or rows.shape[1] != self.n_features:
            raise ValueError(
                f"expected a 2-D array of {self.n_features} features, got shape {rows.shape}"
            )
        with np.errstate(over="ignore"):  # too large for float32: ±inf, as xgboost rounds it
            block = np.ascontiguousarray(rows, dtype=np.float32)
        out = np.empty(len(block), dtype=np.float32)
        _predict(block, self._nodes, self._roots, self._base, self._logistic, out)
        return out

    def _verify(self, model: ModelSource, parsed: ParsedModel, rows: np.ndarray) -> None:
        booster = _booster_of(model, parsed)
        expected = np.asarray(booster.inplace_predict(rows, iteration_range=self.iteration_range))
        if expected.dtype != np.float32 or expected.shape != (len(rows),):
            raise PredictorMismatch(
                f"xgboost predicts {expected.dtype} of shape {expected.shape}, not one float32 "
                "per row"
            )
        got = self.predict(rows)
        differ = np.flatnonzero(got.view(np.uint32) != expected.view(np.uint32))
        if len(differ):
            first = int(differ[0])
            raise PredictorMismatch(
                f"compiled prediction differs from xgboost's on {len(differ)} of {len(rows)} "
                f"check rows (row {first}: {got[first]!r} against {expected[first]!r})"
            )

    def __repr__(self) -> str:
        return (
            f"TreePredictor(objective={self.objective!r}, trees={len(self._roots)}, "
            f"iteration_range={self.iteration_range})"
        )


@nb.njit(cache=True, nogil=True)
def _predict(
    X: np.ndarray, nodes: np.ndarray, roots: np.ndarray, base: np.float32, logistic: bool,
    out: np.ndarray,
) -> None:  # fmt: skip
    one, cap, eps = np.float32(1.0), np.float32(88.7), np.float32(1e-16)
    for r in range(X.shape[0]):
        margin = base
        for t in range(roots.shape[0]):
            node = nodes[roots[t]]
            while node.left >= 0:
                value = X[r, node.feature]
                if np.isnan(value):
                    node = nodes[node.missing]
                elif value < node.value:
                    node = nodes[node.left]
                else:
                    node = nodes[node.right]
            margin += node.value
        if logistic:
            out[r] = one / (np.exp(min(-margin, cap)) + one + eps)
        else:
            out[r] = margin


@nb.njit(cache=True)
def _logit32(p: np.ndarray) -> np.ndarray:
    # float32 all the way, as xgboost's ProbToMargin; numba's array log is libm's logf
    return -np.log(np.float32(1.0) / p - np.float32(1.0))


def _base_margin32(parsed: ParsedModel) -> np.float32:
    score = np.array([parsed.base_score], dtype=np.float32)
    if parsed.objective in LOGISTIC:
        return np.float32(_logit32(score)[0])
    return score[0]


def _flatten(parsed: ParsedModel) -> tuple[np.ndarray, np.ndarray]:
    """Every tree's nodes in one record array, children as absolute indices; each tree's root."""
    sizes = [len(tree.left) for tree in parsed.trees]
    roots = np.zeros(len(sizes), dtype=np.int32)
    np.cumsum(sizes[:-1], out=roots[1:])
    nodes = np.empty(sum(sizes), dtype=NODE)
    for tree, root in zip(parsed.trees, roots.tolist(), strict=True):
        left = np.asarray(tree.left, dtype=np.int32)
        right = np.asarray(tree.right, dtype=np.int32)
        inner = left >= 0
        part = nodes[root : root + len(left)]
        part["left"] = np.where(inner, left + root, -1)
        part["right"] = np.where(inner, right + root, -1)
        default_left = np.asarray(tree.default_left, dtype=bool)
        part["missing"] = np.where(default_left, part["left"], part["right"])
        part["feature"] = np.where(inner, tree.feature, 0)
        part["value"] = np.asarray(tree.threshold, dtype=np.float32)
    return nodes, roots


def _check_rows(parsed: ParsedModel, n: int, seed: int) -> np.ndarray:
    """Rows whose values sit on, just below, and between each feature's split thresholds, or are
    missing or infinite: where a wrong comparison or rounding would show."""
    rng = np.random.default_rng(seed)
    thresholds: list[list[float]] = [[] for _ in range(parsed.n_features)]
    for tree in parsed.trees:
        for left, feature, threshold in zip(tree.left, tree.feature, tree.threshold, strict=True):
            if left >= 0:
                thresholds[feature].append(threshold)
    rows = rng.normal(size=(n, parsed.n_features))
    for j, found in enumerate(thresholds):
        if not found:
            continue
        points = np.asarray(found, dtype=np.float32)
        below = np.nextafter(points, np.float32(-np.inf))
        between = rng.uniform(points.min() - 1, points.max() + 1, size=len(points))
        candidates = np.concatenate([points, below, between.astype(np.float32)])
        rows[:, j] = rng.choice(candidates.astype(np.float64), size=n)
    kind = rng.random(rows.shape)
    rows[kind < 0.1] = np.nan
    rows[(kind >= 0.1) & (kind < 0.12)] = np.inf
    rows[(kind >= 0.12) & (kind < 0.14)] = -np.inf
    return rows


def _booster_of(model: ModelSource, parsed: ParsedModel) -> xgb.Booster:
    if isinstance(model, xgb.XGBModel):
        return model.get_booster()
    if isinstance(model, xgb.Booster):
        return model
    return booster_from_json(parsed.json_text)
