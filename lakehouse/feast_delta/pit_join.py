"""Point-in-time join of entity rows against feature rows, in pure polars.

Semantics (they match Feast's SQL offline stores, see ``docs/feast_offline_store.md``):

* For each entity row and each feature frame, the chosen feature row is the one with the
  same join-key values whose event timestamp ``ts`` satisfies
  ``entity_ts - ttl <= ts <= entity_ts`` (both edges inclusive, as in Feast's BigQuery,
  Snowflake, Ibis/DuckDB and dask stores). A ``ttl`` of ``None`` or zero means no lower
  bound.
* Among candidates the latest ``ts`` wins; rows with the same ``ts`` are ordered by the
  created-timestamp column, latest wins, and a null created timestamp loses to any value.
* Every entity row comes back exactly once, in input order; duplicate entity rows are kept;
  features are null where no row qualifies. Feature rows with a null event timestamp or a
  null join key never match.
* Timestamps are compared in UTC: naive values are taken to be UTC, aware ones are
  converted. The entity timestamp column is returned converted to UTC.

The feature side is a :class:`polars.LazyFrame`, so filters on time range and join keys are
pushed into the scan (Parquet statistics, Delta file statistics) before anything is read.
The join runs on keys and timestamps only; feature columns are read afterwards for the
matched rows, and large frames are joined one hash partition of the keys at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import pandas as pd
import polars as pl
import pyarrow as pa

from lakehouse.feast_delta.errors import DeltaSchemaError, EntityFrameError

TimeUnit = Literal["ns", "us", "ms"]

DEFAULT_ENTITY_TIMESTAMP_COLUMN = "event_timestamp"

_ROW = "__scorehouse_entity_row"
_ENTITY_TS = "__scorehouse_entity_ts"
_TS = "__scorehouse_feature_ts"
_FEATURE_ROW = "__scorehouse_feature_row"

DEFAULT_MAX_ROWS_PER_PASS = 2_000_000
"""Feature rows per join pass: above it, keys are hash-partitioned over several passes."""


@dataclass(frozen=True)
class FeatureFrame:
    """The rows of one feature view, with columns already named as they are joined.

    Attributes:
        name: Name used in error messages (the feature view's name).
        frame: Lazy feature rows; may hold more columns than the ones named here.
        join_keys: Key columns, named as in the entity frame. Empty for entity-less views,
            where every entity row joins the latest row overall.
        timestamp_column: Event-timestamp column of ``frame``.
        feature_columns: Columns to append to the result, named as they should appear.
        created_timestamp_column: Optional tie-breaker among rows with equal event time.
        ttl: Maximum age of a feature row relative to the entity timestamp; ``None`` or a
            zero duration means unlimited.
        row_count_hint: Rough number of rows in ``frame`` (e.g. from Delta statistics);
            decides how many key partitions the join is done in, to bound memory.
    """

    name: str
    frame: pl.LazyFrame
    join_keys: Sequence[str]
    timestamp_column: str
    feature_columns: Sequence[str]
    created_timestamp_column: str | None = None
    ttl: timedelta | None = None
    row_count_hint: int | None = None


def infer_entity_timestamp_column(schema: dict[str, Any]) -> str:
    """Pick the entity timestamp column the way Feast does.

    ``event_timestamp`` if present, else the only datetime-typed column; anything else is
    ambiguous and raises :class:`EntityFrameError`.
    """
    if DEFAULT_ENTITY_TIMESTAMP_COLUMN in schema:
        return DEFAULT_ENTITY_TIMESTAMP_COLUMN
    candidates = [name for name, dtype in schema.items() if _is_datetime_dtype(dtype)]
    if len(candidates) == 1:
        return candidates[0]
    raise EntityFrameError(
        f"Cannot tell which column of the entity frame is the event timestamp (datetime "
        f"columns: {candidates}); name it '{DEFAULT_ENTITY_TIMESTAMP_COLUMN}'. "
        f"Columns: {list(schema)}"
    )


def _is_datetime_dtype(dtype: Any) -> bool:
    if isinstance(dtype, pl.DataType | type) and dtype in (pl.Datetime, pl.Date):
        return True
    if isinstance(dtype, pa.DataType):
        return pa.types.is_timestamp(dtype) or pa.types.is_date(dtype)
    kind = getattr(dtype, "kind", None)  # numpy / pandas dtypes
    return kind == "M" or str(dtype).startswith("datetime64")


def _to_utc(expr: pl.Expr, dtype: pl.DataType, unit: TimeUnit) -> pl.Expr:
    """Express a Datetime/Date column as ``Datetime(unit, "UTC")``; naive means UTC."""
    if dtype == pl.Date:
        expr = expr.cast(pl.Datetime(unit))
        dtype = pl.Datetime(unit)
    if not isinstance(dtype, pl.Datetime):
        raise TypeError(f"expected a datetime column, got {dtype}")
    expr = (
        expr.dt.replace_time_zone("UTC")
        if dtype.time_zone is None
        else expr.dt.convert_time_zone("UTC")
    )
    return expr.dt.cast_time_unit(unit)


def timestamp_literal(value: datetime, dtype: pl.DataType) -> pl.Expr:
    """A literal comparable with a column of ``dtype``; naive columns hold UTC wall time.

    For a ``Date`` column the literal is the UTC date, which keeps range filters a superset
    of the exact datetime comparison.
    """
    if dtype == pl.Date:
        return pl.lit(value.astimezone(UTC).date())
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is None:
        return pl.lit(value.astimezone(UTC).replace(tzinfo=None), dtype=dtype)
    return pl.lit(value, dtype=dtype)


def _require_columns(schema: pl.Schema, columns: Sequence[str], view: str) -> None:
    missing = [c for c in columns if c not in schema]
    if missing:
        raise DeltaSchemaError(
            f"Feature view '{view}': columns {missing} are missing from its feature rows "
            f"(available: {list(schema)})"
        )


def _key_casts(
    entity_schema: pl.Schema, feature_schema: pl.Schema, keys: Sequence[str], view: str
) -> tuple[list[pl.Expr], list[pl.Expr]]:
    """Casts that make each join key the same type on both sides, or a clear error."""
    left: list[pl.Expr] = []
    right: list[pl.Expr] = []
    for key in keys:
        ent, feat = entity_schema[key], feature_schema[key]
        if ent == feat:
            continue
        if ent == pl.Null or (ent.is_integer() and feat.is_integer()):
            # All-null entity keys just adopt the feature type; integer widths are unified
            # on the entity's type so the output keeps the caller's dtype.
            target = feat if ent == pl.Null else ent
            left.append(pl.col(key).cast(target))
            right.append(pl.col(key).cast(target, strict=False))
        elif _is_stringish(ent) and _is_stringish(feat):
            left.append(pl.col(key).cast(pl.String))
            right.append(pl.col(key).cast(pl.String))
        else:
            raise EntityFrameError(
                f"Join key '{key}' is {ent} in the entity frame but {feat} in feature view '{view}'"
            )
    return left, right


def _is_stringish(dtype: pl.DataType) -> bool:
    return dtype in (pl.String, pl.Categorical, pl.Enum) or isinstance(
        dtype, pl.Categorical | pl.Enum
    )


def _key_filter(
    frame: pl.LazyFrame,
    entity: pl.DataFrame,
    keys: Sequence[str],
    feature_schema: pl.Schema,
) -> pl.LazyFrame:
    """Keep only feature rows whose keys occur in the entity frame.

    A single key becomes an ``is_in`` literal, which the scan evaluates against Parquet
    statistics and while decoding; several keys become a semi-join.
    """
    if not keys:
        return frame
    wanted = entity.lazy().select(pl.col(k).cast(feature_schema[k], strict=False) for k in keys)
    if len(keys) == 1:
        values = wanted.drop_nulls().unique().collect(engine="in-memory").to_series()
        return frame.filter(pl.col(keys[0]).is_in(values.implode()))
    return frame.join(wanted.drop_nulls().unique(), on=list(keys), how="semi")


def point_in_time_join(
    entity: pl.DataFrame,
    features: Sequence[FeatureFrame],
    *,
    timestamp_column: str | None = None,
    max_rows_per_pass: int = DEFAULT_MAX_ROWS_PER_PASS,
) -> pl.DataFrame:
    """Join each feature frame onto ``entity`` as of each row's timestamp.

    Args:
        entity: Entity rows: the join keys of every frame plus a datetime column.
        features: Feature frames to join, in output order.
        timestamp_column: Entity timestamp column; inferred like Feast when ``None``.
        max_rows_per_pass: A frame whose ``row_count_hint`` exceeds this is joined in
            several passes, each over one hash partition of the join keys, so memory holds
            about this many candidate rows at a time (at the cost of re-scanning).

    Returns:
        ``entity`` in its original row order with the timestamp column converted to UTC
        and every frame's ``feature_columns`` appended (null where nothing qualifies).

    Raises:
        EntityFrameError: missing key/timestamp columns, null timestamps, incompatible key
            types or output-name collisions.
        DeltaSchemaError: a feature frame lacks a column it was declared with.
    """
    ts_col = timestamp_column or infer_entity_timestamp_column(dict(entity.schema))
    check_entity_frame(entity, features, ts_col)

    ts_dtype = entity.schema[ts_col]
    unit = _join_unit(entity.get_column(ts_col), features)
    to_utc = _to_utc(pl.col(ts_col), ts_dtype, unit)
    utc_ts = entity.select(to_utc).to_series()
    lo, hi = utc_ts.min(), utc_ts.max()
    if lo is None or hi is None:  # no entity rows: the same plan, on an empty range, types it
        lo = hi = datetime(1970, 1, 1, tzinfo=UTC)

    key_cols = list(dict.fromkeys(k for ff in features for k in ff.join_keys))
    left = (
        entity.lazy()
        .select(*key_cols, to_utc.alias(_ENTITY_TS))
        .with_row_index(_ROW)
        .sort(_ENTITY_TS)
        .collect(engine="in-memory")  # once, not once per view and partition
        .lazy()
    )
    values = []
    assert isinstance(lo, datetime) and isinstance(hi, datetime)
    for i, ff in enumerate(features):
        side = _prepare_feature_side(ff, entity, unit, lo, hi, str(i))
        parts = 1
        if ff.join_keys and ff.row_count_hint:
            parts = max(1, -(-ff.row_count_hint // max(max_rows_per_pass, 1)))
        positions = side.match(left.with_columns(side.left_casts), ff, parts)
        values.append(side.fetch(positions))
    own_unit: TimeUnit = getattr(ts_dtype, "time_unit", None) or "us"
    entity = entity.with_columns(_to_utc(pl.col(ts_col), ts_dtype, own_unit))
    return pl.concat([entity, *values], how="horizontal")


def _join_unit(entity_ts: pl.Series, features: Sequence[FeatureFrame]) -> TimeUnit:
    """Time unit to compare in: microseconds unless nanoseconds are needed to be exact.

    Delta stores microseconds; pandas entity frames carry nanoseconds that are almost
    always whole microseconds, and casting them is cheaper than widening every feature row.
    """
    ns_entity = getattr(entity_ts.dtype, "time_unit", None) == "ns" and bool(
        (entity_ts.dt.nanosecond() % 1000 != 0).any()
    )
    ns_features = any(
        getattr(ff.frame.collect_schema()[ff.timestamp_column], "time_unit", None) == "ns"
        for ff in features
    )
    return "ns" if ns_entity or ns_features else "us"


def check_entity_frame(entity: pl.DataFrame, features: Sequence[FeatureFrame], ts_col: str) -> None:
    """Raise :class:`EntityFrameError` unless ``entity`` can be joined with ``features``.

    Checks the timestamp column (present, datetime, no nulls), the join keys of every
    frame (present, type compatible with the frame's), that every frame has its declared
    columns, and that no output column collides with an entity column or another feature.
    Only schemas are looked at, so this is cheap enough to run before any data is read.

    Raises:
        EntityFrameError: a problem with the entity frame.
        DeltaSchemaError: a feature frame lacks a declared column.
    """
    columns = set(entity.columns)
    if ts_col not in columns:
        raise EntityFrameError(
            f"Entity frame has no timestamp column '{ts_col}' (columns: {entity.columns})"
        )
    if not _is_datetime_dtype(entity.schema[ts_col]):
        raise EntityFrameError(
            f"Entity timestamp column '{ts_col}' must be a datetime column, "
            f"got {entity.schema[ts_col]}"
        )
    if entity[ts_col].null_count():
        raise EntityFrameError(
            f"Entity timestamp column '{ts_col}' has {entity[ts_col].null_count()} null values"
        )
    seen: set[str] = set()
    for ff in features:
        missing = [k for k in ff.join_keys if k not in columns]
        if missing:
            raise EntityFrameError(
                f"Entity frame lacks join key column(s) {missing} needed by feature view "
                f"'{ff.name}' (entity columns: {entity.columns})"
            )
        for name in ff.feature_columns:
            if name in columns or name in seen:
                raise EntityFrameError(
                    f"Output column '{name}' of feature view '{ff.name}' collides with "
                    f"{'an entity column' if name in columns else 'another feature'}; "
                    "use full_feature_names=True or rename it"
                )
            seen.add(name)
        schema = ff.frame.collect_schema()
        created = [ff.created_timestamp_column] if ff.created_timestamp_column else []
        _require_columns(
            schema, [*ff.join_keys, ff.timestamp_column, *created, *ff.feature_columns], ff.name
        )
        _key_casts(entity.schema, schema, ff.join_keys, ff.name)


def _partition(keys: Sequence[str], parts: int) -> pl.Expr:
    return pl.struct(list(keys)).hash(seed=0) % parts


@dataclass(frozen=True)
class _PreparedSide:
    """One feature frame, pruned: its join columns, and a way to read its values."""

    candidates: pl.LazyFrame  # join keys, UTC timestamp, created, position in the scan
    values: pl.LazyFrame  # position in the scan and the feature columns, not yet read
    timestamp_column: str  # name of the UTC timestamp column in ``candidates``
    row_column: str  # name of the position column
    order: list[str]  # sort order that puts the winning row last among equal times
    left_casts: list[pl.Expr]  # casts making the entity keys match the frame's key types

    def match(self, left: pl.LazyFrame, ff: FeatureFrame, parts: int) -> pl.Series:
        """Scan position of the winning feature row for each entity row (null if none).

        ``left`` holds the entity keys, ``_ENTITY_TS`` and ``_ROW``, sorted by time. With
        ``parts > 1`` keys are hash-partitioned and each partition is read, sorted and
        joined on its own, so only one partition's candidates are in memory at a time.
        """
        keys = list(ff.join_keys)
        pieces = []
        for part in range(parts):
            candidates, entities = self.candidates, left
            if parts > 1:
                candidates = candidates.filter(_partition(keys, parts) == part)
                entities = entities.filter(_partition(keys, parts) == part)
            # Streaming scan in bounded batches, then an in-memory sort: polars' streaming
            # sort and as-of join cost about twice the CPU here.
            locator = candidates.collect(engine="streaming").sort(self.order, nulls_last=False)
            joined = entities.join_asof(
                locator.lazy().select(*keys, self.timestamp_column, self.row_column),
                left_on=_ENTITY_TS,
                right_on=self.timestamp_column,
                by=keys or None,
                strategy="backward",
                tolerance=ff.ttl if ff.ttl else None,
                check_sortedness=False,  # sorted above; polars cannot check with by=
            )
            pieces.append(joined.select(_ROW, self.row_column).collect(engine="in-memory"))
            del locator
        return pl.concat(pieces).sort(_ROW).get_column(self.row_column)

    def fetch(self, rows: pl.Series) -> pl.DataFrame:
        """Feature values at scan positions ``rows`` (null position -> null values).

        Reads only the feature columns and keeps only the matched rows, so memory holds
        at most one row per entity row rather than every candidate row.
        """
        wanted = rows.drop_nulls().unique()
        found = self.values.filter(pl.col(self.row_column).is_in(wanted.implode())).collect(
            engine="streaming"
        )
        return (
            rows.to_frame()
            .join(found, on=self.row_column, how="left", maintain_order="left")
            .drop(self.row_column)
        )


def _prepare_feature_side(
    ff: FeatureFrame,
    entity: pl.DataFrame,
    unit: TimeUnit,
    lo: datetime,
    hi: datetime,
    suffix: str,
) -> _PreparedSide:
    """Plan the two reads of one feature frame.

    The first read (:meth:`_PreparedSide.match`) takes only keys and timestamps of rows
    inside the entity time range and key set; the second (:meth:`_PreparedSide.fetch`)
    takes feature columns of the matched rows only. Both filters are written against the
    raw columns so that the scan can apply them with file and row-group statistics.
    """
    schema = ff.frame.collect_schema()
    created = ff.created_timestamp_column
    ts_dtype = schema[ff.timestamp_column]
    if not _is_datetime_dtype(ts_dtype):
        raise DeltaSchemaError(
            f"Feature view '{ff.name}': timestamp column '{ff.timestamp_column}' must be a "
            f"datetime column, got {ts_dtype}"
        )
    left_casts, right_casts = _key_casts(entity.schema, schema, ff.join_keys, ff.name)

    ts_alias, row_alias = f"{_TS}_{suffix}", f"{_FEATURE_ROW}_{suffix}"
    # Positions are numbered before any filter, so both reads agree on them.
    located = ff.frame.with_row_index(row_alias)
    stamps = [ff.timestamp_column, *([created] if created else [])]
    # Comparisons with null are false, so rows without an event timestamp go too.
    ts = pl.col(ff.timestamp_column)
    bound = ts <= timestamp_literal(hi, ts_dtype)
    if ff.ttl:
        bound = bound & (ts >= timestamp_literal(lo - ff.ttl, ts_dtype))
    join_rows = located.select(row_alias, *dict.fromkeys([*ff.join_keys, *stamps])).filter(bound)
    candidates = (
        _key_filter(join_rows, entity, ff.join_keys, schema)
        .select(
            *ff.join_keys,
            *([created] if created else []),
            _to_utc(ts, ts_dtype, unit).alias(ts_alias),
            row_alias,
        )
        .with_columns(right_casts)
        .drop_nulls(list(ff.join_keys))
    )
    return _PreparedSide(
        candidates=candidates,
        values=located.select(row_alias, *ff.feature_columns),
        timestamp_column=ts_alias,
        row_column=row_alias,
        # Sorting on (ts, created) makes the backward as-of join pick the latest created
        # row among equal event timestamps: polars takes the last of equal right-hand keys.
        order=[ts_alias, created] if created else [ts_alias],
        left_casts=left_casts,
    )


def entity_frame_to_arrow(entity_df: Any) -> tuple[pa.Table, str]:
    """Convert a pandas, polars or pyarrow entity frame to Arrow with a UTC timestamp.

    Naive timestamps are taken to be UTC (as Feast does); aware ones, in any time zone, are
    converted to UTC. A pandas object column mixing naive and aware values is rejected,
    since either reading would silently shift some rows.

    Returns:
        The frame as an Arrow table (all columns kept, timestamp column typed
        ``timestamp[unit, tz=UTC]``) and the name of the timestamp column.
    """
    if isinstance(entity_df, str):
        raise NotImplementedError(
            "SQL entity frames are not supported by the Delta offline store; pass a "
            "pandas, polars or pyarrow frame"
        )
    if isinstance(entity_df, pl.LazyFrame):
        entity_df = entity_df.collect()
    if isinstance(entity_df, pd.DataFrame):
        ts_col = infer_entity_timestamp_column(dict(entity_df.dtypes))
        fixed = _pandas_timestamps(entity_df[ts_col], ts_col)
        table = pa.Table.from_pandas(entity_df.assign(**{ts_col: fixed}), preserve_index=False)
    elif isinstance(entity_df, pl.DataFrame):
        ts_col = infer_entity_timestamp_column(dict(entity_df.schema))
        table = entity_df.to_arrow()
    elif isinstance(entity_df, pa.Table | pa.RecordBatch):
        table = pa.table(entity_df)
        ts_col = infer_entity_timestamp_column({f.name: f.type for f in table.schema})
    else:
        raise EntityFrameError(
            f"Unsupported entity frame type {type(entity_df).__name__}; pass a pandas, "
            "polars or pyarrow frame"
        )
    index = table.schema.get_field_index(ts_col)
    column = table.column(index)
    if pa.types.is_date(column.type):
        column = column.cast(pa.timestamp("us"))
    if not pa.types.is_timestamp(column.type):
        raise EntityFrameError(
            f"Entity timestamp column '{ts_col}' must hold datetimes, got {column.type}"
        )
    # Arrow stores instants as UTC integers: tagging a naive column "UTC" reads it as UTC,
    # re-tagging an aware one keeps the instant.
    utc = column.cast(pa.timestamp(column.type.unit, tz="UTC"))
    return table.set_column(index, pa.field(ts_col, utc.type), utc), ts_col


def _pandas_timestamps(series: pd.Series, name: str) -> pd.Series:
    if series.dtype != object:
        return series
    values = series.dropna()
    if not all(isinstance(v, datetime) for v in values):
        kinds = sorted({type(v).__name__ for v in values})
        raise EntityFrameError(
            f"Entity timestamp column '{name}' must hold datetimes, found {kinds}; convert "
            "it with pandas.to_datetime first"
        )
    aware = {v.tzinfo is not None and v.utcoffset() is not None for v in values}
    if len(aware) > 1:
        raise EntityFrameError(
            f"Entity timestamp column '{name}' mixes naive and time-zone-aware timestamps; "
            "make them all aware (or all naive, which means UTC)"
        )
    return pd.to_datetime(series, utc=True) if aware == {True} else pd.to_datetime(series)
