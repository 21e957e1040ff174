"""``TreeShapExplainer``: exact TreeSHAP values of an xgboost tree model, in linear time per row."""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal

import numba
import numpy as np
import xgboost as xgb

from models.explain import _kernels as K
from models.explain._inputs import RowSource, as_row_source, mark_missing, refuse_infinite
from models.explain._plan import PlanError, ShapPlan, build_tables, make_plan
from models.explain._prediction import IterationRange, iteration_range_of, missing_of
from models.explain._xgb_model import ModelSource, ParsedModel, booster_from_json, load_model
from models.explain.errors import TreeShapFallbackWarning

logger = logging.getLogger(__name__)

DEFAULT_MAX_TABLE_BYTES = 512 * 2**20
DEFAULT_BLOCK_ROWS = 65_536  # rows converted to float32 at a time: bounds the input copy
CHUNK_ROWS = 1024  # rows per parallel task: their masks and accumulators stay in L2 cache


class TreeShapExplainer:
    """Exact (path-dependent) TreeSHAP values for a single-output xgboost gbtree model.

    Built once per model: per-leaf Shapley tables are precomputed for every mask of satisfied
    path conditions, so explaining a row costs one table lookup per folded subtree instead of
    xgboost's quadratic-in-depth recursion. Values are in margin space (log-odds for
    ``binary:logistic``) and match ``pred_contribs=True`` within a few 1e-6 (xgboost rounds in
    float32); each row sums to the margin the model predicts (``output_margin=True``).

    The explained trees and missing values are those of the model's own prediction:

    - ``iteration_range`` means what it means to the model's ``predict``. For a Booster (or
      model JSON or file) the default is every iteration, as ``Booster.predict`` does even when
      the Booster has a ``best_iteration`` attribute; an xgboost sklearn estimator trained with
      early stopping uses ``(0, best_iteration + 1)`` when the range is not given or ends at 0,
      as ``XGBModel.predict`` does. One iteration is ``num_parallel_tree`` trees.
    - ``missing``: values equal to it (in float32), and NaN, are missing. Defaults to the
      estimator's ``missing``, else NaN (a DMatrix's default).
    - ±inf (and values too large for float32) are refused with :class:`ShapInputError` naming
      the column, as a DMatrix refuses them, unless ``missing`` is ±inf.

    If the tables would exceed ``max_table_bytes`` (very deep trees: a leaf with ``k`` distinct
    path features needs ``2**k * k`` entries), the explainer delegates to xgboost's
    ``pred_contribs`` (same iteration range and ``missing``): it emits a
    :class:`TreeShapFallbackWarning`, logs why, and ``backend`` reads ``"pred_contribs"``.

    Threads: the kernels run on numba's thread pool. ``n_threads`` (here or per call) sets
    ``numba.set_num_threads`` only for the duration of the call and restores it afterwards; the
    default is numba's current setting (all cores unless ``NUMBA_NUM_THREADS`` says otherwise).
    Do not call one explainer from several Python threads at once: numba's default threading
    layer is not re-entrant.

    Raises :class:`UnsupportedModelError` for gblinear, dart, multi-class/multi-target models,
    categorical splits and objectives whose base-margin transform is unknown.

    Attributes:
        expected_value: the bias in margin space: base margin plus every explained tree's
            cover-weighted mean leaf value (the last column of every row).
        iteration_range: the iterations ``(begin, end)`` explained, ``end`` resolved (never 0
            unless the model has no iterations): pass it to ``predict(iteration_range=...)`` to
            get the margin the values add up to.
        num_boosted_rounds: the iterations in the model (all of them, explained or not).
        missing: the value treated as missing besides NaN (NaN when there is none).
        n_features, feature_names: the model's input width and names (``None`` if unnamed).
        backend: ``"tables"`` or ``"pred_contribs"`` (with ``fallback_reason`` saying why).
        table_bytes: memory held by the tables.
        build_seconds: one-time cost of parsing the model and building the tables.
        compile_seconds: one-time cost of compiling, or loading from numba's on-disk cache, the
            kernels in this process (near 0 once another explainer has loaded them).
    """

    def __init__(
        self,
        model: ModelSource,
        *,
        iteration_range: Sequence[int] | None = None,
        missing: float | None = None,
        max_table_bytes: int = DEFAULT_MAX_TABLE_BYTES,
        n_threads: int | None = None,
        fold_height: int = 2,
        block_rows: int = DEFAULT_BLOCK_ROWS,
    ) -> None:
        """Parse ``model`` and build its tables (or choose the fallback).

        ``iteration_range`` and ``missing``: as the model's prediction uses them (see the class
        docstring); ``None`` means the model's default. ``ValueError`` for a range xgboost
        refuses (past the last iteration, ``begin > end``) or a negative one.
        ``fold_height`` is the height of the subtrees folded into one table (0 = one table per
        leaf); lower heights are tried before falling back when the tables exceed the budget.
        ``block_rows`` bounds how many input rows are converted to float32 at once.
        """
        if fold_height < 0 or block_rows < 1 or max_table_bytes < 0:
            raise ValueError("fold_height and max_table_bytes must be >= 0, block_rows >= 1")
        _check_threads(n_threads)
        start = time.perf_counter()
        parsed = load_model(model)
        self.num_boosted_rounds: int = parsed.num_boosted_rounds
        self.iteration_range: IterationRange = iteration_range_of(
            model, iteration_range, parsed.num_boosted_rounds
        )
        self.missing: float = missing_of(model, missing)
        with np.errstate(over="ignore"):  # xgboost rounds missing to float32 too
            self._missing32 = np.float32(self.missing)
        parsed = parsed.iterations(*self.iteration_range)
        self.n_features: int = parsed.n_features
        self.feature_names: tuple[str, ...] | None = parsed.feature_names
        self.objective: str = parsed.objective
        self.n_threads: int | None = n_threads
        self.max_table_bytes = max_table_bytes
        self.block_rows = block_rows
        self.compile_seconds: float = 0.0
        self.fallback_reason: str | None = None
        self._plan: ShapPlan | None = None
        self._booster: tuple[xgb.Booster, IterationRange] | None = None
        try:
            plan = self._choose_plan(parsed, fold_height)
            compile_start = time.perf_counter()
            K.warm_up(plan.up_clear.dtype.type)
            self.compile_seconds = time.perf_counter() - compile_start
            with _numba_threads(n_threads):
                build_tables(plan)
            self._plan = plan
            self.expected_value: float = float(plan.bias)
        except PlanError as exc:
            self.fallback_reason = str(exc)
            logger.warning("TreeSHAP tables not built, using xgboost pred_contribs: %s", exc)
            warnings.warn(
                f"TreeSHAP tables not built ({exc}): explaining with xgboost's pred_contribs, "
                "typically two orders of magnitude slower (see fallback_reason)",
                TreeShapFallbackWarning,
                stacklevel=2,
            )
            self._booster = self._fallback_booster(parsed)
            empty_row = np.full((1, self.n_features), np.nan, dtype=np.float32)
            self.expected_value = float(self._predict_contribs(empty_row, n_threads)[0, -1])
        self.build_seconds: float = time.perf_counter() - start - self.compile_seconds

    @property
    def backend(self) -> Literal["tables", "pred_contribs"]:
        """``"tables"`` for the linear-time kernel, ``"pred_contribs"`` after a fallback."""
        return "tables" if self._plan is not None else "pred_contribs"

    @property
    def table_bytes(self) -> int:
        """Bytes held by the precomputed tables (0 with the fallback)."""
        return self._plan.table_bytes if self._plan is not None else 0

    @property
    def fold_height(self) -> int | None:
        """Height of the folded subtrees actually used (``None`` with the fallback)."""
        return self._plan.fold_height if self._plan is not None else None

    def shap_values(self, X: Any, *, n_threads: int | None = None) -> np.ndarray:
        """Return SHAP values of the rows of ``X`` as a (rows, n_features + 1) float64 array.

        Column ``j < n_features`` is feature ``j``'s contribution in the model's feature order;
        the last column is the bias (``expected_value``), as ``pred_contribs`` lays them out.
        ``X`` may be a numpy array, pandas DataFrame, pyarrow Table or polars DataFrame; named
        columns are matched to the model's feature names. Rows are converted and explained
        ``block_rows`` at a time, so memory beyond the output stays bounded.
        """
        source = as_row_source(X, self.n_features, self.feature_names)
        out = np.empty((source.n_rows, self.n_features + 1), dtype=np.float64)
        threads = self.n_threads if n_threads is None else n_threads
        with _numba_threads(threads):
            for start in range(0, source.n_rows, self.block_rows):
                stop = min(source.n_rows, start + self.block_rows)
                self._explain_block(source, start, stop, out[start:stop], threads)
        return out

    def _explain_block(
        self, source: RowSource, start: int, stop: int, out: np.ndarray, threads: int | None
    ) -> None:
        plan = self._plan
        names = self.feature_names
        with np.errstate(over="ignore"):  # too large for float32: inf, refused below as xgboost
            block = source.rows(start, stop) if plan is None else source.feature_major(start, stop)
        axis = 1 if plan is None else 0
        refuse_infinite(
            block, self._missing32, feature_axis=axis, first_row=start, feature_names=names
        )
        if plan is None:
            out[:] = self._predict_contribs(block, threads)  # the DMatrix applies ``missing``
            return
        assert plan.tables is not None  # built in the constructor
        K.shap_block(
            mark_missing(block, self._missing32),
            out,
            plan.bias,
            plan.tree_up_ptr,
            plan.up_meta,
            plan.up_thr,
            plan.up_clear,
            plan.tree_unit_ptr,
            plan.unit_meta,
            plan.dec_meta,
            plan.dec_thr,
            plan.col_feat,
            plan.tables,
            plan.n_mask_slots,
            CHUNK_ROWS,
        )

    def _choose_plan(self, parsed: ParsedModel, fold_height: int) -> ShapPlan:
        """The most folded plan whose tables fit ``max_table_bytes``; PlanError if none does."""
        smallest = None
        for height in range(fold_height, -1, -1):
            plan = make_plan(parsed, height)
            if plan.table_bytes <= self.max_table_bytes:
                if height != fold_height:
                    logger.info("TreeSHAP: folding reduced to height %d to fit the budget", height)
                return plan
            smallest = plan.table_bytes if smallest is None else min(smallest, plan.table_bytes)
        raise PlanError(
            f"tables need {smallest:,} bytes, more than max_table_bytes={self.max_table_bytes:,}"
        )

    def _fallback_booster(self, parsed: ParsedModel) -> tuple[xgb.Booster, IterationRange]:
        """The Booster and iteration range for pred_contribs, which takes ranges from 0 only."""
        booster = booster_from_json(parsed.json_text)
        begin, end = self.iteration_range
        if begin == 0:
            return booster, (0, end)
        # a window of iterations: slice the model, as xgboost's own error message suggests (never
        # empty here: no trees need no tables, so an empty range never falls back)
        return booster[begin:end], (0, end - begin)

    def _predict_contribs(self, rows: np.ndarray, threads: int | None) -> np.ndarray:
        assert self._booster is not None
        booster, iteration_range = self._booster
        booster.set_param({"nthread": threads or 0})
        names = list(self.feature_names) if self.feature_names else None
        matrix = xgb.DMatrix(rows, feature_names=names, missing=self.missing)
        contribs = booster.predict(matrix, pred_contribs=True, iteration_range=iteration_range)
        return contribs.astype(np.float64)

    def __repr__(self) -> str:
        return (
            f"TreeShapExplainer(backend={self.backend!r}, n_features={self.n_features}, "
            f"objective={self.objective!r}, iteration_range={self.iteration_range}, "
            f"missing={self.missing}, table_bytes={self.table_bytes:,})"
        )


@contextmanager
def _numba_threads(n_threads: int | None) -> Iterator[None]:
    """Run the body with ``n_threads`` numba threads (capped at the pool size), then restore."""
    _check_threads(n_threads)
    if n_threads is None:
        yield
        return
    previous = numba.get_num_threads()
    pool_size = numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]  # set at import
    numba.set_num_threads(min(n_threads, pool_size))
    try:
        yield
    finally:
        numba.set_num_threads(previous)


def _check_threads(n_threads: int | None) -> None:
    if n_threads is not None and n_threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
