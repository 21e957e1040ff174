"""Adapt the rows to explain (numpy, pandas, pyarrow, polars) to float32 blocks.

Blocks are produced on demand so that a caller explaining many rows holds only one converted
block at a time; values are rounded to float32 exactly as xgboost's DMatrix does, and missing
values (NaN, pandas NA, arrow nulls) become NaN. :func:`mark_missing` and
:func:`refuse_infinite` then apply xgboost's ``missing`` rules to a converted block.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.explain.errors import ShapInputError

_NUMERIC_KINDS = frozenset("biuf")  # bool, signed, unsigned, float


@dataclass(frozen=True)
class RowSource:
    """Rows in the model's feature order; ``rows(a, b)`` returns a (b - a, n_features) float32."""

    n_rows: int
    rows: Callable[[int, int], np.ndarray]

    def feature_major(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` as a C-contiguous (n_features, stop - start) float32 array."""
        return np.ascontiguousarray(self.rows(start, stop).T)


def as_row_source(data: Any, n_features: int, feature_names: Sequence[str] | None) -> RowSource:
    """Validate ``data`` against the model and return a lazily converting :class:`RowSource`.

    Named columns (pandas, pyarrow, polars) are matched to the model's feature names by name in
    any order when the model has names, and by position otherwise. Raises
    :class:`ShapInputError` for a wrong column count or names, non-numeric columns, sparse input,
    or arrays that are not two-dimensional.
    """
    pd = sys.modules.get("pandas")
    if pd is not None and isinstance(data, pd.DataFrame):
        return _from_pandas(data, n_features, feature_names)
    if type(data).__module__.split(".")[0] == "polars" and hasattr(data, "to_arrow"):
        data = data.to_arrow()
    pa = sys.modules.get("pyarrow")
    if pa is not None and isinstance(data, pa.RecordBatch):
        data = pa.Table.from_batches([data])
    if pa is not None and isinstance(data, pa.Table):
        return _from_arrow(data, n_features, feature_names)
    if hasattr(data, "tocsr"):
        raise ShapInputError(
            "sparse matrices are not supported; xgboost treats absent entries as missing, so "
            "densify only with NaN for absent entries"
        )
    return _from_numpy(data, n_features)


def _from_numpy(data: Any, n_features: int) -> RowSource:
    array = np.asarray(data)
    if array.ndim != 2:
        raise ShapInputError(
            f"expected a 2-D array (rows x {n_features} features), got {array.ndim}-D with shape "
            f"{array.shape}; wrap a single row as X[None, :]"
        )
    if array.dtype.kind not in _NUMERIC_KINDS:
        raise ShapInputError(
            f"input dtype {array.dtype} is not numeric; convert to float (missing values as NaN)"
        )
    _check_count(array.shape[1], n_features)
    return RowSource(array.shape[0], lambda a, b: array[a:b].astype(np.float32, copy=False))


def _from_pandas(frame: Any, n_features: int, names: Sequence[str] | None) -> RowSource:
    import pandas as pd

    columns = _ordered_columns(list(frame.columns), n_features, names)
    for column in columns:
        dtype = frame[column].dtype
        if not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)) or (
            pd.api.types.is_complex_dtype(dtype)
        ):
            raise ShapInputError(
                f"column {column!r} has non-numeric dtype {dtype}; pass numbers (category codes "
                "as integers, missing values as NaN)"
            )
    # the frame holds exactly the model's columns; convert a row slice (a view), then reorder:
    # selecting columns first would copy every row
    positions = [frame.columns.get_loc(c) for c in columns]
    order = None if positions == list(range(len(positions))) else positions

    def rows(a: int, b: int) -> np.ndarray:
        block = frame.iloc[a:b].to_numpy(dtype=np.float32, na_value=np.nan)
        return block if order is None else block[:, order]

    return RowSource(len(frame), rows)


def _from_arrow(table: Any, n_features: int, names: Sequence[str] | None) -> RowSource:
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = _ordered_columns(list(table.column_names), n_features, names)
    for column in columns:
        kind = table.schema.field(column).type
        if not (
            pa.types.is_integer(kind)
            or pa.types.is_floating(kind)
            or pa.types.is_boolean(kind)
            or pa.types.is_null(kind)
        ):
            raise ShapInputError(
                f"column {column!r} has non-numeric type {kind}; pass numbers (category codes "
                "as integers, missing values as null)"
            )
    selected = table.select(columns)

    def rows(a: int, b: int) -> np.ndarray:
        block = selected.slice(a, b - a)
        out = np.empty((b - a, len(columns)), dtype=np.float32)
        for i, column in enumerate(block.columns):
            out[:, i] = pc.cast(column, pa.float32()).to_numpy(zero_copy_only=False)
        return out

    return RowSource(table.num_rows, rows)


def _ordered_columns(columns: list[Any], n_features: int, names: Sequence[str] | None) -> list[Any]:
    """Column keys in model order: by name when the model has names, else by position."""
    if len(set(columns)) != len(columns):
        raise ShapInputError("input has duplicate column names")
    if names is None:
        _check_count(len(columns), n_features)
        return columns
    have, want = set(columns), set(names)
    missing = [n for n in names if n not in have]
    extra = [c for c in columns if c not in want]
    if missing or extra:
        raise ShapInputError(
            "input columns do not match the model's feature names: "
            f"missing {_preview(missing)}, unexpected {_preview(extra)}"
        )
    return list(names)


def _check_count(got: int, expected: int) -> None:
    if got != expected:
        raise ShapInputError(f"input has {got} features but the model expects {expected}")


def _preview(items: list[Any], limit: int = 5) -> str:
    shown = ", ".join(repr(i) for i in items[:limit])
    more = f", ... ({len(items)} in all)" if len(items) > limit else ""
    return f"[{shown}{more}]"


def mark_missing(block: np.ndarray, missing: np.float32) -> np.ndarray:
    """``block`` with the values equal to ``missing`` (compared in float32) set to NaN.

    NaN is always missing, as in xgboost. Returns ``block`` itself when nothing changes, else a new
    array: the caller's input is never written to.
    """
    if np.isnan(missing):
        return block
    hit = block == missing
    return np.where(hit, np.float32(np.nan), block) if hit.any() else block


def refuse_infinite(
    block: np.ndarray,
    missing: np.float32,
    *,
    feature_axis: int,
    first_row: int,
    feature_names: Sequence[str] | None,
) -> None:
    """Raise :class:`ShapInputError` naming the column if the float32 ``block`` holds ±inf.

    xgboost's DMatrix (and so its ``pred_contribs``) refuses ±inf, and values too large for
    float32, unless ``missing`` is ±inf; then the infinity equal to ``missing`` is missing and the
    other one an ordinary extreme value, which the kernels compare as xgboost does.
    """
    if np.isinf(missing):
        return
    infinite = np.isinf(block)
    if not infinite.any():
        return
    per_feature = infinite.sum(axis=1 - feature_axis)
    columns = [int(j) for j in np.flatnonzero(per_feature)]
    first = columns[0]
    line = infinite[first] if feature_axis == 0 else infinite[:, first]
    row = first_row + int(np.argmax(line))

    def label(j: int) -> str:
        return repr(feature_names[j]) if feature_names else str(j)

    others = [label(j) for j in columns[1:6]] + (["..."] if len(columns) > 6 else [])
    also = f" (also in columns {', '.join(others)})" if others else ""
    raise ShapInputError(
        f"column {label(first)} holds an infinite value (or one too large for float32) in row "
        f"{row}{also}; xgboost's DMatrix and pred_contribs refuse these unless `missing` is inf: "
        "pass missing values as NaN, clip to finite values, or set missing=np.inf if inf means "
        "missing"
    )
