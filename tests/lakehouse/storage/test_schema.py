from datetime import date

import polars as pl
import pytest

from lakehouse.catalog import Catalog, TableSpec
from lakehouse.errors import SchemaMismatchError, UnknownTableError
from lakehouse.storage import Lakehouse

from .conftest import EVENTS, events

D1 = date(2025, 1, 1)


def test_missing_and_extra_columns_are_named(lake: Lakehouse) -> None:
    frame = events([1], D1).drop("amount").with_columns(pl.lit(1).alias("bogus"))
    with pytest.raises(SchemaMismatchError) as info:
        lake.append("test.events", frame)
    message = str(info.value)
    assert "test.events" in message
    assert "missing columns ['amount']" in message
    assert "unexpected columns ['bogus']" in message
    assert not lake.exists("test.events")


def test_wrong_type_is_named(lake: Lakehouse) -> None:
    lake.append("test.events", events([1], D1))
    frame = events([2], D1).with_columns(pl.col("amount").cast(pl.String))
    with pytest.raises(
        SchemaMismatchError, match=r"column 'amount' has type String, expected Float64"
    ):
        lake.append("test.events", frame)
    assert lake.version("test.events") == 0
    assert lake.read("test.events").height == 1


def test_null_keys_are_refused(lake: Lakehouse) -> None:
    frame = events([1, 2], D1).with_columns(
        pl.when(pl.col("event_id") == 2).then(None).otherwise(pl.col("event_id")).alias("event_id")
    )
    with pytest.raises(SchemaMismatchError, match=r"key column 'event_id' has 1 null rows"):
        lake.append("test.events", frame)


def test_column_order_is_taken_from_the_catalog(lake: Lakehouse) -> None:
    frame = events([1], D1)
    lake.append("test.events", frame.select(reversed(frame.columns)))
    assert lake.read("test.events").columns == list(EVENTS.schema)


def test_unknown_table(lake: Lakehouse) -> None:
    with pytest.raises(UnknownTableError, match=r"unknown table 'test\.nope'"):
        lake.append("test.nope", events([1], D1))


def _evolved(additive: bool) -> TableSpec:
    schema = {**EVENTS.schema, "channel": pl.String}
    return TableSpec(
        name="test.events",
        schema=schema,
        description=EVENTS.description,
        partition_by=EVENTS.partition_by,
        primary_key=EVENTS.primary_key,
        additive_evolution=additive,
    )


def test_additive_evolution_only_where_the_catalog_allows_it(lake: Lakehouse) -> None:
    lake.append("test.events", events([1], D1))
    frame = events([2], D1).with_columns(pl.lit("web").alias("channel"))

    strict = Lakehouse(lake.uri, catalog=Catalog([_evolved(additive=False)]))
    with pytest.raises(SchemaMismatchError, match="channel: new in the catalog"):
        strict.append("test.events", frame)

    evolving = Lakehouse(lake.uri, catalog=Catalog([_evolved(additive=True)]))
    evolving.append("test.events", frame)
    table = evolving.read("test.events").sort("event_id")
    assert table["channel"].to_list() == [None, "web"]
    assert lake.read("test.events", version=0).columns == list(EVENTS.schema)


def test_type_change_in_catalog_is_refused_even_with_evolution(lake: Lakehouse) -> None:
    lake.append("test.events", events([1], D1))
    changed = TableSpec(
        name="test.events",
        schema={**EVENTS.schema, "amount": pl.Int64},
        description=EVENTS.description,
        partition_by=EVENTS.partition_by,
        additive_evolution=True,
    )
    frame = events([2], D1).with_columns(pl.col("amount").cast(pl.Int64))
    with pytest.raises(SchemaMismatchError, match="amount: table has"):
        Lakehouse(lake.uri, catalog=Catalog([changed])).append("test.events", frame)
