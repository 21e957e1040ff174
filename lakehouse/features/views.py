"""Feature tables: one row per entity per day, stamped for point-in-time joins.

A feature *builder* computes a wide frame of feature values per entity and day from silver
tables; ``feature_tables`` adds the derived ratios and the time stamps, and splits the frame into
one table per declared view. The row of entity ``e`` on ``feature_date`` ``d`` summarises only
what was known by the end of day ``d``: its ``event_timestamp`` is midnight UTC after ``d``, so a
point-in-time join at an as-of instant never sees data from that day or later.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from types import MappingProxyType
from typing import Protocol

import polars as pl

from lakehouse.catalog import TIMESTAMP, TableSpec
from lakehouse.storage import Lakehouse

FEATURE_DATE = "feature_date"
STAMPS = ("feature_date", "event_timestamp", "created_timestamp")


def key_columns(join_key: str) -> dict[str, pl.DataType]:
    """The columns every feature table starts with."""
    return {
        join_key: pl.String(),
        FEATURE_DATE: pl.Date(),
        "event_timestamp": TIMESTAMP,
        "created_timestamp": TIMESTAMP,
    }


def safe_ratio(numerator: pl.Expr, denominator: pl.Expr) -> pl.Expr:
    """``numerator / denominator``, null when the denominator is 0 or null."""
    return pl.when(denominator > 0).then(numerator / denominator)


@dataclass(frozen=True)
class Ratio:
    """A feature computed from two others: ``numerator / denominator``, null when the
    denominator is 0 or null (no attempts, no seats: nothing to compare)."""

    name: str
    numerator: str
    denominator: str

    def expr(self) -> pl.Expr:
        numerator, denominator = (pl.col(c).cast(pl.Float64) for c in self.columns)
        return safe_ratio(numerator, denominator).alias(self.name)

    @property
    def columns(self) -> tuple[str, str]:
        return self.numerator, self.denominator


@dataclass(frozen=True)
class FeatureView:
    """One feature table ``features.<name>`` (a Feast feature view over it has the same name)."""

    name: str
    columns: Mapping[str, pl.DataType]
    description: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", MappingProxyType(dict(self.columns)))

    @property
    def table(self) -> str:
        return f"features.{self.name}"

    def spec(self, join_key: str) -> TableSpec:
        return TableSpec(
            name=self.table,
            schema={**key_columns(join_key), **self.columns},
            description=self.description,
            partition_by=(FEATURE_DATE,),
            primary_key=(join_key, FEATURE_DATE),
        )


class FeatureBuilder(Protocol):
    """Computes feature values per entity and day from silver tables."""

    def outputs(self) -> Mapping[str, pl.DataType]:
        """Every column ``build`` returns besides the entity key and ``day``, with its type."""
        ...

    def vocabularies(self) -> Mapping[str, tuple[str, ...]]:
        """The allowed values of each string output (their index is the model's code)."""
        ...

    def build(self, lake: Lakehouse, days: Sequence[date]) -> pl.DataFrame:
        """One row per entity active on each of ``days``: the key, ``day``, the outputs."""
        ...


@dataclass(frozen=True)
class FeatureBatch:
    """Feature rows of a set of days, one frame per feature table."""

    days: list[date]
    tables: dict[str, pl.DataFrame]


def feature_tables(
    rows: pl.DataFrame,
    views: Sequence[FeatureView],
    ratios: Sequence[Ratio],
    join_key: str,
    *,
    created_at: datetime,
) -> dict[str, pl.DataFrame]:
    """Split a builder's rows (key, ``day``, values) into the views' tables, sorted, stamped."""
    stamped = rows.with_columns(
        pl.col("day").alias(FEATURE_DATE),
        (pl.col("day").cast(pl.Datetime("us", "UTC")) + pl.duration(days=1)).alias(
            "event_timestamp"
        ),
        pl.lit(created_at, dtype=TIMESTAMP).alias("created_timestamp"),
        *(ratio.expr() for ratio in ratios),
    )
    tables = {}
    for view in views:
        spec = view.spec(join_key)
        tables[spec.name] = stamped.select(
            [pl.col(c).cast(t) for c, t in spec.schema.items()]
        ).sort(FEATURE_DATE, join_key)
    return tables


def build_feature_batch(
    builder: FeatureBuilder,
    lake: Lakehouse,
    days: Sequence[date],
    views: Sequence[FeatureView],
    ratios: Sequence[Ratio],
    join_key: str,
    *,
    created_at: datetime,
) -> FeatureBatch:
    """The feature tables of ``days`` (one chunk of days: keep it short)."""
    rows = builder.build(lake, days)
    return FeatureBatch(
        sorted(days), feature_tables(rows, views, ratios, join_key, created_at=created_at)
    )
