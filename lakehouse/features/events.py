"""Generic builders for an *event log* (e.g. transactions: an entity id, a time, amounts).

Feature builder ``events`` (``EventWindows``): for each entity and day ``d``, rolling windows over
the events of days ``d − w + 1 … d`` for each window ``w``: the event count, the number of days
with an event, and ``sum`` / ``mean`` / ``max`` / ``min`` of numeric columns, plus the days since
the last event (capped at the longest window). An entity has a row on ``d`` when it had an event
within the longest window: it is *active*.

Label builder ``inactivity`` (``Inactivity``): an entity active on ``A − 1`` (an event within the
``active_days`` before ``A``) gets label 1 when it has no event in ``[A, A + horizon − 1]``; the
first event within the horizon, if any, is recorded as ``event_date_column``.

Days are UTC calendar days of the timestamp column (or the date column itself).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal

import polars as pl

from lakehouse.features.labels import AS_OF, LabelDefinition
from lakehouse.ingest.tables import SourceTables
from lakehouse.storage import Lakehouse

Agg = Literal["count", "sum", "mean", "max", "min"]
AGGREGATIONS: tuple[Agg, ...] = ("count", "sum", "mean", "max", "min")


class BuilderError(ValueError):
    """A builder's options do not fit its source (unknown table or column, bad window)."""


@dataclass(frozen=True)
class EventLog:
    """Where the events are: a silver table, its entity key and its time column."""

    table: str
    join_key: str
    timestamp: str
    columns: Mapping[str, pl.DataType]

    @classmethod
    def from_options(
        cls, source: SourceTables, join_key: str, options: Mapping[str, Any]
    ) -> EventLog:
        feed = options.get("table")
        table = f"silver.{feed}"
        if table not in source.silver:
            known = [name.removeprefix("silver.") for name in source.silver]
            raise BuilderError(f"table: {feed!r} is not a feed of the source (feeds: {known})")
        schema = dict(source.silver[table].schema)
        timestamp = options.get("timestamp")
        if timestamp not in schema or not (
            isinstance(schema[timestamp], pl.Datetime) or schema[timestamp] == pl.Date
        ):
            raise BuilderError(f"timestamp: {timestamp!r} is not a date or timestamp column")
        if join_key not in schema:
            raise BuilderError(f"{table} has no entity key column {join_key!r}")
        return cls(table, join_key, str(timestamp), schema)

    def days(self, lake: Lakehouse, since: date, until: date) -> pl.LazyFrame:
        """Events of days ``since … until`` with their ``day``."""
        column = pl.col(self.timestamp)
        day = column.dt.date() if isinstance(self.columns[self.timestamp], pl.Datetime) else column
        return (
            lake.scan(self.table)
            .with_columns(day.alias("day"))
            .filter(pl.col("day").is_between(since, until))
        )


@dataclass(frozen=True)
class Aggregation:
    column: str | None
    agg: Agg

    @property
    def stem(self) -> str:
        return "events" if self.column is None else self.column

    def name(self, window: int) -> str:
        return f"{self.stem}_{self.agg}_{window}d"


class EventWindows:
    """Feature builder ``events`` (see the module docstring)."""

    def __init__(
        self, log: EventLog, windows: Sequence[int], aggregations: Sequence[Aggregation]
    ) -> None:
        if not windows or min(windows) < 1:
            raise BuilderError(f"windows: need positive day counts, got {list(windows)}")
        self.log = log
        self.windows = tuple(sorted(set(windows)))
        self.aggregations = (Aggregation(None, "count"), *aggregations)

    @classmethod
    def from_options(
        cls, source: SourceTables, join_key: str, options: Mapping[str, Any]
    ) -> EventWindows:
        unknown = set(options) - {"table", "timestamp", "windows", "aggregate"}
        if unknown:
            raise BuilderError(f"unknown options {sorted(unknown)}")
        log = EventLog.from_options(source, join_key, options)
        aggregations = []
        for column, aggs in dict(options.get("aggregate") or {}).items():
            if column not in log.columns or not log.columns[column].is_numeric():
                raise BuilderError(f"aggregate: {column!r} is not a numeric column of {log.table}")
            for agg in [aggs] if isinstance(aggs, str) else list(aggs):
                if agg not in AGGREGATIONS[1:]:
                    raise BuilderError(f"aggregate.{column}: {agg!r} not in {AGGREGATIONS[1:]}")
                aggregations.append(Aggregation(column, agg))
        windows = options.get("windows", [7, 30, 90])
        if not isinstance(windows, list) or not all(isinstance(w, int) for w in windows):
            raise BuilderError(f"windows: must be a list of day counts, got {windows!r}")
        return cls(log, windows, aggregations)

    @property
    def longest(self) -> int:
        return self.windows[-1]

    def outputs(self) -> dict[str, pl.DataType]:
        columns: dict[str, pl.DataType] = {}
        for window in self.windows:
            for aggregation in self.aggregations:
                kind = pl.Int64() if aggregation.agg == "count" else pl.Float64()
                columns[aggregation.name(window)] = kind
            columns[f"active_days_{window}d"] = pl.Int64()
        columns["days_since_last_event"] = pl.Int64()
        return columns

    def vocabularies(self) -> dict[str, tuple[str, ...]]:
        return {}

    def default_views(self) -> dict[str, Any]:
        """One view with every output, named after the table."""
        name = self.log.table.removeprefix("silver.") + "_windows"
        return {name: {"features": list(self.outputs())}}

    def build(self, lake: Lakehouse, days: Sequence[date]) -> pl.DataFrame:
        key = self.log.join_key
        first, last = min(days), max(days)
        since = first - timedelta(days=self.longest - 1)
        numeric = sorted({a.column for a in self.aggregations if a.column is not None})
        daily = (
            self.log.days(lake, since, last)
            .group_by(key, "day")
            .agg(
                pl.len().cast(pl.Int64).alias("events__count"),
                *(pl.col(c).cast(pl.Float64).sum().alias(f"{c}__sum") for c in numeric),
                *(pl.col(c).cast(pl.Float64).max().alias(f"{c}__max") for c in numeric),
                *(pl.col(c).cast(pl.Float64).min().alias(f"{c}__min") for c in numeric),
                *(pl.col(c).is_not_null().sum().cast(pl.Int64).alias(f"{c}__n") for c in numeric),
            )
            .collect()
        )
        grid = _dense_grid(daily.select(key).unique(), key, since, last)
        dense = grid.join(daily, on=[key, "day"], how="left").sort(key, "day")
        return dense.select(key, "day", *self._window_exprs(key)).filter(
            pl.col("day").is_in(list(days)) & (pl.col(f"events_count_{self.longest}d") > 0)
        )

    def _window_exprs(self, key: str) -> list[pl.Expr]:
        def rolling(column: str, window: int, how: str) -> pl.Expr:
            values = pl.col(column)
            if how == "max":
                return values.rolling_max(window, min_samples=1).over(key)
            if how == "min":
                return values.rolling_min(window, min_samples=1).over(key)
            return values.fill_null(0).rolling_sum(window, min_samples=1).over(key)

        exprs = []
        for window in self.windows:
            for a in self.aggregations:
                if a.agg == "count":
                    expr = rolling("events__count", window, "sum").cast(pl.Int64)
                elif a.agg == "mean":
                    total = rolling(f"{a.column}__sum", window, "sum")
                    count = rolling(f"{a.column}__n", window, "sum")
                    expr = pl.when(count > 0).then(total / count)
                else:
                    expr = rolling(f"{a.column}__{a.agg}", window, a.agg)
                exprs.append(expr.alias(a.name(window)))
            active = pl.col("events__count").fill_null(0).gt(0).cast(pl.Int64)
            exprs.append(
                active.rolling_sum(window, min_samples=1).over(key).alias(f"active_days_{window}d")
            )
        last_event = pl.when(pl.col("events__count") > 0).then(pl.col("day")).forward_fill()
        exprs.append(
            (pl.col("day") - last_event.over(key))
            .dt.total_days()
            .clip(upper_bound=self.longest)
            .cast(pl.Int64)
            .alias("days_since_last_event")
        )
        return exprs


def _dense_grid(entities: pl.DataFrame, key: str, since: date, last: date) -> pl.DataFrame:
    days = pl.DataFrame({"day": pl.date_range(since, last, "1d", eager=True)})
    return entities.join(days, how="cross")


@dataclass(frozen=True)
class Inactivity:
    """Label builder ``inactivity`` (see the module docstring)."""

    log: EventLog
    active_days: int

    @classmethod
    def from_options(
        cls, source: SourceTables, definition: LabelDefinition, options: Mapping[str, Any]
    ) -> Inactivity:
        unknown = set(options) - {"table", "timestamp", "active_days"}
        if unknown:
            raise BuilderError(f"unknown options {sorted(unknown)}")
        active = options.get("active_days", 90)
        if not isinstance(active, int) or active < 1:
            raise BuilderError(f"active_days: must be a positive day count, got {active!r}")
        return cls(EventLog.from_options(source, definition.join_key, options), active)

    def build(
        self, lake: Lakehouse, definition: LabelDefinition, as_of: Sequence[date]
    ) -> pl.DataFrame:
        key = self.log.join_key
        since = min(as_of) - timedelta(days=self.active_days)
        until = max(as_of) + timedelta(days=definition.horizon_days - 1)
        events = self.log.days(lake, since, until).select(key, "day").unique().sort("day").collect()
        dates = pl.DataFrame({AS_OF: list(as_of)}, schema={AS_OF: pl.Date()})
        pairs = events.select(key).unique().join(dates, how="cross").sort(AS_OF)

        def nearest(strategy: str, exact: bool, name: str) -> pl.DataFrame:
            return pairs.join_asof(
                events.rename({"day": name}),
                left_on=AS_OF,
                right_on=name,
                by=key,
                strategy=strategy,  # type: ignore[arg-type]
                allow_exact_matches=exact,
                check_sortedness=False,  # both sides sorted by day above
            )

        last = nearest("backward", False, "last_event")
        following = nearest("forward", True, "next_event").select(key, AS_OF, "next_event")
        window_end = pl.col(AS_OF) + pl.duration(days=definition.horizon_days - 1)
        within = pl.when(pl.col("next_event") <= window_end).then(pl.col("next_event"))
        return (
            last.filter((pl.col(AS_OF) - pl.col("last_event")).dt.total_days() <= self.active_days)
            .join(following, on=[key, AS_OF], how="left")
            .with_columns(
                pl.col(AS_OF).cast(pl.Datetime("us", "UTC")).alias("event_timestamp"),
                within.is_null().cast(pl.Int64).alias(definition.column),
                within.alias(definition.event_date_column),
                (pl.col(AS_OF) + pl.duration(days=definition.maturity_days - 1)).alias(
                    "matured_on"
                ),
            )
            .select(list(definition.spec().schema))
            .sort(AS_OF, key)
        )
