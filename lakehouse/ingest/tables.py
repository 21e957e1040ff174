"""The tables a source system's feeds land in, and how silver tables come from bronze.

Every feed gets a ``bronze.<feed>`` table: the contract's columns as delivered plus lineage
(``_source_file``, ``_batch_id``, ``_ingested_at``), partitioned by ``_batch_date`` (the landing
day), so re-ingesting a day replaces exactly that day. A ``SilverFlow`` derives one silver table
from one bronze table: landed rows are reduced to one row per silver primary key, the latest by
the feed's timestamp (ties: the later landing day, then the later row in the file).

Corrections. A source may re-deliver a day with rows corrected, added or removed. Bronze takes
the new day in place of the old one; silver must then hold exactly what it would hold had it
been built from the corrected bronze, so a silver write covers whole landing days and rebuilds
every key those days touch, old and new, from all of bronze (``SilverFlow.rewrite``):

1. keys now delivered on the days (the days' bronze rows, derived columns added);
2. keys whose silver row came from the days (its ``_batch_id`` lineage names the landing day):
   they may have lost that row in the re-delivery;
3. for the union, every bronze row of those keys on any day is reduced again, and the result
   replaces the keys' silver rows; a key left without any bronze row is deleted.

This stays correct when a key appears on several days: a ticket opened on day 1 and resolved on
day 2 falls back to its day-1 row when day 2 is re-delivered without it, and a corrected
profile whose ``updated_at`` moved earlier still replaces the wrong one (a merge that only lets
newer versions win could never undo a bad row). Keys neither delivered on the days nor coming
from them keep their rows: their bronze rows are unchanged and their latest row lies elsewhere.
The silver write is one commit (``Lakehouse.replace_keys``). Cost: one scan of the bronze key
columns per write, besides the days' rows.

A source may also declare cross-feed business rules (``checks``, see ``lakehouse.ingest.delivery``)
that refuse a whole delivery before any of its rows is written.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from types import MappingProxyType
from typing import TYPE_CHECKING

import polars as pl

from lakehouse.catalog import TIMESTAMP, TableSpec
from lakehouse.sources.contract import LandingSource

if TYPE_CHECKING:
    from lakehouse.storage import Lakehouse

AUDIT_COLUMNS: dict[str, pl.DataType] = {
    "_source_file": pl.String(),
    "_batch_id": pl.String(),
    "_ingested_at": TIMESTAMP,
    "_batch_date": pl.Date(),
}
"""Columns every bronze table adds to its feed's contract columns (``_batch_date`` partitions)."""
LINEAGE: dict[str, pl.DataType] = {"_batch_id": pl.String()}
"""Lineage kept in silver: the landing batch a row came from (``<feed>:<YYYY-MM-DD>:<digest>``,
see ``lakehouse.ingest.reader``)."""


def lineage_day(batch_id: pl.Expr | None = None) -> pl.Expr:
    """The landing day named by a ``_batch_id`` (null where the lineage is not a landing batch)."""
    expr = pl.col("_batch_id") if batch_id is None else batch_id
    return expr.str.extract(r":(\d{4}-\d{2}-\d{2}):[0-9a-f]+$", 1).str.to_date("%Y-%m-%d")


@dataclass(frozen=True)
class DeliveryCheck:
    """A cross-feed business rule of a source.

    ``check`` is given the lakehouse (its silver tables hold what was ingested before) and the
    validated frames of a delivery (feed name → the rows of every delivered day, with their
    ``_source_file``) for at least the ``feeds`` it names, and returns the problems found, each
    naming file, column, rule and row count (empty: the delivery passes).
    """

    name: str
    feeds: tuple[str, ...]
    check: Callable[[Lakehouse, Mapping[str, pl.DataFrame]], list[str]]


def bronze_spec(feed: LandingSource) -> TableSpec:
    """The bronze table of a feed: its contract columns plus lineage columns."""
    return TableSpec(
        name=f"bronze.{feed.name}",
        schema={**feed.columns, **AUDIT_COLUMNS},
        description=f"Landed {feed.name} files as delivered, with lineage. {feed.description}",
        partition_by=("_batch_date",),
        primary_key=(*feed.key, "_batch_date"),
    )


@dataclass(frozen=True)
class SilverRewrite:
    """What a silver write of some landing days does: ``keys`` are rebuilt and become ``rows``
    (keys without a row are deleted)."""

    keys: pl.DataFrame
    rows: pl.DataFrame

    @property
    def deleted(self) -> int:
        return self.keys.height - self.rows.height


@dataclass(frozen=True)
class SilverFlow:
    """How one silver table is derived from one feed's bronze table."""

    silver: TableSpec
    feed: LandingSource
    derived: Mapping[str, pl.Expr] = field(default_factory=dict)

    @property
    def bronze(self) -> str:
        return f"bronze.{self.feed.name}"

    @property
    def key(self) -> list[str]:
        return list(self.silver.primary_key)

    def transform(self, bronze_rows: pl.DataFrame) -> pl.DataFrame:
        """One row per silver key (the latest), with derived columns, in the silver schema."""
        order = [c for c in (self.feed.timestamp_column,) if c is not None]
        rows = bronze_rows.with_row_index("_row").with_columns(
            expr.alias(name) for name, expr in self.derived.items()
        )
        latest = rows.sort([*order, "_batch_date", "_row"]).unique(
            subset=self.key, keep="last", maintain_order=True
        )
        return latest.select(list(self.silver.schema)).sort(self.key)

    def rewrite(
        self, bronze: pl.LazyFrame, silver: pl.LazyFrame | None, days: Sequence[date]
    ) -> SilverRewrite:
        """The silver keys that landing ``days`` touch and their rows rebuilt from all of
        ``bronze`` (see the module docstring); ``silver`` is the current table, if written."""
        delivered = bronze.filter(pl.col("_batch_date").is_in(list(days)))
        keys = [self._keys(delivered)]
        if silver is not None:
            keys.append(silver.filter(lineage_day().is_in(list(days))).select(self.key))
        touched = pl.concat(keys).unique().collect()
        rows = self.transform(self._rows_of(bronze, touched))
        return SilverRewrite(touched.sort(self.key), rows)

    def _keys(self, bronze: pl.LazyFrame) -> pl.LazyFrame:
        derived = [expr.alias(name) for name, expr in self.derived.items() if name in self.key]
        return bronze.with_columns(derived).select(self.key)

    def _rows_of(self, bronze: pl.LazyFrame, keys: pl.DataFrame) -> pl.DataFrame:
        """Every bronze row of ``keys``, on any landing day."""
        # Per-column IN-lists let the scan skip rows early; the join then matches exact keys.
        stored = [c for c in self.key if c not in self.derived]
        prefilter = [pl.col(c).is_in(keys[c].unique().implode()) for c in stored]
        derived = [expr.alias(name) for name, expr in self.derived.items() if name in self.key]
        candidates = bronze.filter(*prefilter) if prefilter else bronze
        matched = candidates.with_columns(derived).join(
            keys.lazy(), on=self.key, how="semi", maintain_order="left"
        )
        return matched.collect()


def default_flow(feed: LandingSource, description: str | None = None) -> SilverFlow:
    """``silver.<feed>``: one row per feed key, the latest delivery winning (a snapshot table
    or an event log whose rows are never corrected need nothing more)."""
    return SilverFlow(
        TableSpec(
            name=f"silver.{feed.name}",
            schema={**feed.columns, **LINEAGE},
            description=description or f"{feed.name}, deduplicated on {list(feed.key)}.",
            primary_key=feed.key,
        ),
        feed,
    )


@dataclass(frozen=True)
class SourceTables:
    """A source system as the lakehouse sees it: its feeds and the silver tables they feed."""

    name: str
    feeds: Mapping[str, LandingSource]
    flows: Mapping[str, SilverFlow]
    """Silver table name → flow."""
    checks: tuple[DeliveryCheck, ...] = ()
    """Cross-feed business rules a delivery must pass before anything is written."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "feeds", MappingProxyType(dict(self.feeds)))
        object.__setattr__(self, "flows", MappingProxyType(dict(self.flows)))
        object.__setattr__(self, "checks", tuple(self.checks))
        unknown = [f.feed.name for f in self.flows.values() if f.feed.name not in self.feeds]
        if unknown:
            raise ValueError(f"source {self.name}: silver flows read unknown feeds {unknown}")
        unread = sorted({f for c in self.checks for f in c.feeds} - set(self.feeds))
        if unread:
            raise ValueError(f"source {self.name}: business rules read unknown feeds {unread}")

    @property
    def bronze(self) -> dict[str, TableSpec]:
        """Bronze table name → spec, one per feed."""
        specs = (bronze_spec(feed) for feed in self.feeds.values())
        return {spec.name: spec for spec in specs}

    @property
    def silver(self) -> dict[str, TableSpec]:
        return {name: flow.silver for name, flow in self.flows.items()}

    def tables(self) -> list[TableSpec]:
        """Every table of the source: bronze then silver."""
        return [*self.bronze.values(), *self.silver.values()]

    @classmethod
    def with_default_flows(cls, name: str, feeds: Mapping[str, LandingSource]) -> SourceTables:
        """A source whose every feed has the default silver table."""
        flows = (default_flow(feed) for feed in feeds.values())
        return cls(name, feeds, {flow.silver.name: flow for flow in flows})
