"""Turning simulator arrays into polars frames that follow a landing contract exactly.

A frame is built in one polars query: raw numpy columns go in, one expression per contract
column comes out (ids, labels, timestamps are rendered in Rust, not per row in Python), and every
column is cast to the contract dtype. The per-call overhead of polars, not the row count,
dominates small daily files, so one query per file keeps thousands of files cheap. Shared by
the simulators of every source system.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache

import numpy as np
import polars as pl


@lru_cache(maxsize=8)
def _id_table(prefix: str, size: int) -> pl.Series:
    numbers = pl.Series(np.arange(1, size + 1, dtype=np.int64))
    return pl.select(pl.lit(prefix) + pl.lit(numbers).cast(pl.String).str.zfill(7)).to_series()


def numbered_id(prefix: str, column: str, capacity: int) -> pl.Expr:
    """``{prefix}0000001``-style ids of the entity indices in ``column`` (index 0 is number 1).

    Ids are looked up in a table built once per capacity (rounded up to a power of two).
    """
    size = 1 << max(capacity - 1, 1).bit_length()
    return pl.lit(_id_table(prefix, size)).gather(pl.col(column))


def padded(column: str, width: int) -> pl.Expr:
    """Zero-padded decimal rendering of an integer column."""
    return pl.col(column).cast(pl.String).str.zfill(width)


def yyyymmdd(column: str) -> pl.Expr:
    """``YYYYMMDD`` rendering of an epoch-day column (used inside ids)."""
    return pl.col(column).cast(pl.Int32).cast(pl.Date).dt.strftime("%Y%m%d")


def identifier(prefix: str, *parts: pl.Expr) -> pl.Expr:
    """``PREFIX-part-part`` ids."""
    return pl.concat_str([pl.lit(prefix), *parts], separator="-")


def timestamp(column: str) -> pl.Expr:
    """UTC timestamp from an epoch-seconds column."""
    return (pl.col(column).cast(pl.Int64) * 1_000_000).cast(pl.Datetime("us", "UTC"))


def day_date(column: str) -> pl.Expr:
    """Date from an epoch-day column."""
    return pl.col(column).cast(pl.Int32).cast(pl.Date)


def label(column: str, vocabulary: Sequence[str]) -> pl.Expr:
    """Vocabulary string for each integer code in ``column``; negative codes become null."""
    table = pl.Series([*vocabulary, None], dtype=pl.String)
    code = pl.col(column)
    return pl.lit(table).gather(pl.when(code >= 0).then(code).otherwise(len(vocabulary)))


def where(valid: str, expr: pl.Expr) -> pl.Expr:
    """``expr`` where the boolean column ``valid`` is true, else null."""
    return pl.when(pl.col(valid)).then(expr)


def build_frame(
    schema: Mapping[str, pl.DataType],
    raw: Mapping[str, np.ndarray],
    columns: Mapping[str, pl.Expr],
    sort_by: Sequence[str] = (),
) -> pl.DataFrame:
    """A frame with exactly ``schema``'s columns, order and dtypes.

    ``raw`` holds equal-length numpy arrays, rows ordered by the raw columns ``sort_by`` (if
    any); ``columns`` maps every schema column to an expression over them (``pl.col`` for plain
    values, the helpers above for rendered ones).
    """
    if set(columns) != set(schema):
        raise ValueError(f"columns {sorted(columns)} do not match the schema {sorted(schema)}")
    arrays = {name: np.asarray(values) for name, values in raw.items()}
    if len({len(values) for values in arrays.values()}) > 1:
        raise ValueError("raw columns differ in length")
    if sort_by:
        order = np.lexsort([arrays[name] for name in reversed(sort_by)])
        arrays = {name: values[order] for name, values in arrays.items()}
    data = pl.DataFrame(arrays)
    # Eager select: for small frames it costs half of a lazy collect.
    return data.select_seq(columns[name].cast(dtype).alias(name) for name, dtype in schema.items())
