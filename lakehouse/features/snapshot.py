"""Generic builders for a *snapshot* table: one row per entity, a target column, no dates.

Each delivery (one landing day ``S``) is a whole snapshot: ``bronze.<feed>`` partition ``S``.

Feature builder ``snapshot`` (``SnapshotColumns``): on day ``d`` every entity of the latest
snapshot delivered on or before ``d`` has a row with the chosen columns of that snapshot.

Label builder ``column`` (``ColumnLabel``): the target is a column of the snapshot, known at
delivery. The label of an entity of the snapshot of day ``S`` is as of ``S + 1`` (its entity
timestamp is midnight after ``S``, the first instant the snapshot's features are known), so a
point-in-time join pairs each label with the features of its own delivery. Such a *given* label
has ``horizon_days = maturity_days = 0``: partition ``S`` writes it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import polars as pl

from lakehouse.catalog import TIMESTAMP
from lakehouse.features.events import BuilderError
from lakehouse.features.labels import AS_OF, LabelDefinition
from lakehouse.ingest.tables import SourceTables
from lakehouse.sources.contract import LandingSource
from lakehouse.storage import Lakehouse

BATCH = "_batch_date"


def _feed(source: SourceTables, options: Mapping[str, Any]) -> LandingSource:
    name = str(options.get("table"))
    if name not in source.feeds:
        raise BuilderError(
            f"table: {name!r} is not a feed of the source (feeds: {list(source.feeds)})"
        )
    return source.feeds[name]


def _snapshots(lake: Lakehouse, feed: LandingSource, days: Sequence[date]) -> pl.LazyFrame:
    """The rows of the latest delivery on or before each of ``days``, with that ``day``."""
    bronze = f"bronze.{feed.name}"
    delivered = (
        lake.scan(bronze)
        .filter(pl.col(BATCH) <= max(days))
        .select(pl.col(BATCH).unique())
        .collect()
        .sort(BATCH)
    )
    wanted = pl.DataFrame({"day": sorted(days)}, schema={"day": pl.Date()})
    chosen = wanted.join_asof(delivered, left_on="day", right_on=BATCH, strategy="backward")
    chosen = chosen.filter(pl.col(BATCH).is_not_null())
    batches = chosen[BATCH].unique().to_list()
    return lake.scan(bronze).filter(pl.col(BATCH).is_in(batches)).join(chosen.lazy(), on=BATCH)


class SnapshotColumns:
    """Feature builder ``snapshot`` (see the module docstring)."""

    def __init__(self, feed: LandingSource, join_key: str, columns: Sequence[str]) -> None:
        if join_key not in feed.columns:
            raise BuilderError(f"feed {feed.name} has no entity key column {join_key!r}")
        unknown = [c for c in columns if c not in feed.columns]
        if unknown:
            raise BuilderError(f"columns: {unknown} are not columns of feed {feed.name}")
        strings = [c for c in columns if feed.columns[c] == pl.String and c not in feed.categories]
        if strings:
            raise BuilderError(
                f"columns: text columns {strings} need a vocabulary (categories) in feed "
                f"{feed.name}: the model codes each value by its position"
            )
        self.feed, self.join_key, self.columns = feed, join_key, tuple(columns)

    @classmethod
    def from_options(
        cls, source: SourceTables, join_key: str, options: Mapping[str, Any]
    ) -> SnapshotColumns:
        unknown = set(options) - {"table", "columns"}
        if unknown:
            raise BuilderError(f"unknown options {sorted(unknown)}")
        feed = _feed(source, options)
        columns = options.get("columns")
        if not isinstance(columns, list) or not columns:
            raise BuilderError("columns: list the snapshot columns that are features")
        return cls(feed, join_key, columns)

    def outputs(self) -> dict[str, pl.DataType]:
        return {c: self.feed.columns[c] for c in self.columns}

    def vocabularies(self) -> dict[str, tuple[str, ...]]:
        return {c: tuple(v) for c, v in self.feed.categories.items() if c in self.columns}

    def default_views(self) -> dict[str, Any]:
        return {self.feed.name: {"features": list(self.columns)}}

    def build(self, lake: Lakehouse, days: Sequence[date]) -> pl.DataFrame:
        return (
            _snapshots(lake, self.feed, days).select(self.join_key, "day", *self.columns).collect()
        )


@dataclass(frozen=True)
class ColumnLabel:
    """Label builder ``column`` (see the module docstring)."""

    feed: LandingSource
    target: str
    positive: object

    @classmethod
    def from_options(
        cls, source: SourceTables, definition: LabelDefinition, options: Mapping[str, Any]
    ) -> ColumnLabel:
        unknown = set(options) - {"table", "target", "positive"}
        if unknown:
            raise BuilderError(f"unknown options {sorted(unknown)}")
        if definition.horizon_days or definition.maturity_days:
            raise BuilderError(
                "a label given by a column is known at delivery: set horizon_days: 0 and "
                "maturity_days: 0"
            )
        feed = _feed(source, options)
        target = options.get("target")
        if target not in feed.columns:
            raise BuilderError(f"target: {target!r} is not a column of feed {feed.name}")
        positive = options.get("positive", 1)
        return cls(feed, str(target), positive)

    def build(
        self, lake: Lakehouse, definition: LabelDefinition, as_of: Sequence[date]
    ) -> pl.DataFrame:
        deliveries = [day - timedelta(days=1) for day in as_of]
        bronze = f"bronze.{self.feed.name}"
        rows = lake.scan(bronze).filter(pl.col(BATCH).is_in(deliveries)).collect()
        target = pl.col(self.target)
        value = target.cast(pl.String) == str(self.positive)
        labels = rows.select(
            definition.join_key,
            (pl.col(BATCH) + pl.duration(days=1)).alias(AS_OF),
            value.cast(pl.Int64).alias(definition.column),
            target.is_null().alias("_missing"),
        )
        missing = int(labels["_missing"].sum())
        if missing:
            raise BuilderError(
                f"target {self.target!r} of {bronze}: {missing} of {rows.height} rows are null "
                "(rule: every row has a label)"
            )
        days = labels.sort(AS_OF).group_by(AS_OF, maintain_order=True)  # the first day named
        for day, group in days:
            outcomes = group[definition.column].unique().to_list()
            if len(outcomes) < 2:
                raise BuilderError(
                    f"target {self.target!r} of {bronze} delivered on "
                    f"{day[0] - timedelta(days=1)}: constant ({outcomes[0]} == positive "
                    f"{self.positive!r} in all {group.height} rows; rule: both outcomes)"
                )
        return (
            labels.with_columns(
                pl.col(AS_OF).cast(TIMESTAMP).alias("event_timestamp"),
                pl.lit(None, dtype=pl.Date()).alias(definition.event_date_column),
                pl.col(AS_OF).alias("matured_on"),
            )
            .select(list(definition.spec().schema))
            .sort(AS_OF, definition.join_key)
        )
