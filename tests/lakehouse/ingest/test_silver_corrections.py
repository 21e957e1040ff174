"""A corrected re-delivery of a landing day replaces that day's contribution to silver, deletions
included, so silver always equals a rebuild from the corrected bronze."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from lakehouse.catalog import Catalog
from lakehouse.errors import SchemaMismatchError
from lakehouse.ingest.reader import read_batch
from lakehouse.ingest.saas import SAAS
from lakehouse.ingest.tables import SilverFlow, lineage_day
from lakehouse.storage import Lakehouse

from .conftest import customer_rows, ticket_rows, usage_rows, write

D1, D2, D3 = date(2025, 3, 1), date(2025, 3, 2), date(2025, 3, 3)
TICKETS, CUSTOMERS, HISTORY = "silver.tickets", "silver.customers", "silver.customer_history"


def _at(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


OPENED = {"T1": D1, "T2": D2, "T3": D2, "T4": D1}


def _tickets(*rows: tuple[str, date, int, str]) -> pl.DataFrame:
    """Ticket rows (id, day, hour, status); each ticket opens at 07:00 of its ``OPENED`` day."""
    frame = ticket_rows(len(rows))
    opened = [_at(OPENED[r[0]], 7) for r in rows]
    updated = [_at(r[1], r[2]) for r in rows]
    resolved = [u if r[3] == "resolved" else None for u, r in zip(updated, rows, strict=True)]
    return frame.with_columns(
        pl.Series("ticket_id", [r[0] for r in rows]),
        pl.Series("opened_at", opened, dtype=frame["opened_at"].dtype),
        pl.Series("updated_at", updated, dtype=frame["updated_at"].dtype),
        pl.Series("status", [r[3] for r in rows]),
        pl.Series("resolved_at", resolved, dtype=frame["resolved_at"].dtype),
        pl.Series("severity", ["low"] * len(rows)),
    )


def _customers(*rows: tuple[str, date, int, int]) -> pl.DataFrame:
    """Profile rows (id, day, hour, seats)."""
    frame = customer_rows(len(rows))
    return frame.with_columns(
        pl.Series("customer_id", [r[0] for r in rows]),
        pl.Series("updated_at", [_at(r[1], r[2]) for r in rows], dtype=frame["updated_at"].dtype),
        pl.Series("seats", [r[3] for r in rows]),
    )


DELIVERIES = {
    "tickets": {
        # T1 opens on day 1 and is resolved on day 2; T2 only lands on day 2; T3 opens on
        # day 2 and is resolved on day 3; T4 opens and is resolved on day 1.
        D1: _tickets(("T1", D1, 7, "open"), ("T4", D1, 7, "open"), ("T4", D1, 9, "resolved")),
        D2: _tickets(("T1", D2, 10, "resolved"), ("T2", D2, 7, "open"), ("T3", D2, 7, "open")),
        D3: _tickets(("T3", D3, 9, "resolved")),
    },
    "customers": {
        D1: _customers(("C1", D1, 0, 5), ("C2", D1, 0, 9)),
        D2: _customers(("C1", D2, 9, 12), ("C3", D2, 11, 3)),
        D3: _customers(("C2", D3, 8, 10)),
    },
}
# Day 2 again: T1's resolution and all of T2 withdrawn, T3 corrected; C1's seat change
# corrected to 15 seats and an earlier time, C3's signup withdrawn.
CORRECTED_D2 = {
    "tickets": _tickets(("T3", D2, 7, "open")).with_columns(pl.lit("urgent").alias("severity")),
    "customers": _customers(("C1", D2, 8, 15)),
}


def _bronze(lake: Lakehouse, landing: Path, feed: str, day: date) -> None:
    batch = read_batch(landing, SAAS.feeds[feed], day)
    lake.replace(f"bronze.{feed}", batch.frame, partition={"_batch_date": day})


def _silver(lake: Lakehouse, flow: SilverFlow, days: list[date]) -> None:
    table = flow.silver.name
    current = lake.scan(table) if lake.exists(table) else None
    rewrite = flow.rewrite(lake.scan(flow.bronze), current, days)
    lake.replace_keys(table, rewrite.rows, rewrite.keys)


def _reference(flow: SilverFlow, bronze: pl.DataFrame) -> pl.DataFrame:
    """Brute force: every bronze row, latest per key by timestamp then landing day."""
    stamp = flow.feed.timestamp_column
    assert stamp is not None
    rows = bronze.with_columns(expr.alias(name) for name, expr in flow.derived.items())
    latest = rows.sort([stamp, "_batch_date"]).group_by(list(flow.silver.primary_key)).last()
    return latest.select(list(flow.silver.schema)).sort(list(flow.silver.primary_key))


@pytest.fixture
def world(tmp_path: Path) -> tuple[Lakehouse, Path]:
    lake = Lakehouse(tmp_path / "lake", catalog=Catalog(SAAS.tables()))
    landing = tmp_path / "landing"
    for feed, days in DELIVERIES.items():
        for day, frame in days.items():
            write(landing, feed, frame, day)
    for day in (D1, D2, D3):  # one run per day, as the daily partitions run
        for feed in DELIVERIES:
            _bronze(lake, landing, feed, day)
        for name in (TICKETS, CUSTOMERS, HISTORY):
            _silver(lake, SAAS.flows[name], [day])
    return lake, landing


def _redeliver_day_2(lake: Lakehouse, landing: Path) -> None:
    for feed, frame in CORRECTED_D2.items():
        write(landing, feed, frame, D2)
        _bronze(lake, landing, feed, D2)
    for name in (TICKETS, CUSTOMERS, HISTORY):
        _silver(lake, SAAS.flows[name], [D2])


def test_daily_silver_equals_the_brute_force_rebuild(world: tuple[Lakehouse, Path]) -> None:
    lake, _ = world
    for name in (TICKETS, CUSTOMERS, HISTORY):
        flow = SAAS.flows[name]
        assert lake.read(name).sort(flow.key).equals(_reference(flow, lake.read(flow.bronze)))
    tickets = lake.read(TICKETS).sort("ticket_id")
    assert tickets["status"].to_list() == ["resolved", "open", "resolved", "resolved"]


def test_corrected_day_replaces_its_contribution(world: tuple[Lakehouse, Path]) -> None:
    lake, landing = world
    _redeliver_day_2(lake, landing)
    for name in (TICKETS, CUSTOMERS, HISTORY):
        flow = SAAS.flows[name]
        assert lake.read(name).sort(flow.key).equals(_reference(flow, lake.read(flow.bronze))), name

    tickets = {row["ticket_id"]: row for row in lake.read(TICKETS).to_dicts()}
    assert set(tickets) == {"T1", "T3", "T4"}  # T2 is withdrawn
    assert tickets["T1"]["status"] == "open"  # falls back to its day-1 row
    assert tickets["T1"]["_batch_id"].startswith("tickets:2025-03-01:")
    assert tickets["T3"]["status"] == "resolved"  # its day-3 row still wins
    assert tickets["T3"]["severity"] == "low"

    customers = {row["customer_id"]: row for row in lake.read(CUSTOMERS).to_dicts()}
    assert set(customers) == {"C1", "C2"}  # C3's withdrawn signup is gone
    assert customers["C1"]["seats"] == 15  # corrected although its updated_at moved back
    assert customers["C1"]["updated_at"] == _at(D2, 8)
    history = lake.read(HISTORY).filter(pl.col("customer_id") == "C1").sort("updated_at")
    assert history["updated_at"].to_list() == [_at(D1, 0), _at(D2, 8)]


def test_each_silver_write_is_one_commit_and_keeps_earlier_versions(
    world: tuple[Lakehouse, Path],
) -> None:
    lake, landing = world
    before = lake.read(TICKETS)
    version = lake.version(TICKETS)
    _redeliver_day_2(lake, landing)
    assert lake.version(TICKETS) == version + 1
    assert lake.history(TICKETS, 1)[0]["scorehouse.operation"] == "replace_keys"
    assert lake.read(TICKETS, version=version).equals(before)


def test_rerunning_a_day_changes_nothing(world: tuple[Lakehouse, Path]) -> None:
    lake, _ = world
    before = {name: lake.read(name) for name in (TICKETS, CUSTOMERS, HISTORY)}
    for name in before:
        _silver(lake, SAAS.flows[name], [D1, D2, D3])
        flow = SAAS.flows[name]
        assert lake.read(name).sort(flow.key).equals(before[name].sort(flow.key))


def test_lineage_day_reads_the_landing_day() -> None:
    ids = pl.DataFrame({"_batch_id": ["tickets:2025-03-02:0123456789abcdef", "synthetic", None]})
    assert ids.select(lineage_day())["_batch_id"].to_list() == [D2, None, None]


def test_replace_keys_refuses_rows_outside_the_keys(world: tuple[Lakehouse, Path]) -> None:
    lake, _ = world
    version = lake.version(TICKETS)
    rows = lake.read(TICKETS)
    with pytest.raises(SchemaMismatchError, match="rows have a key outside the keys replaced"):
        lake.replace_keys(TICKETS, rows, rows.head(1).select("ticket_id"))
    with pytest.raises(SchemaMismatchError, match="repeat a primary key"):
        lake.replace_keys(TICKETS, pl.concat([rows, rows]), rows.select("ticket_id"))
    assert lake.version(TICKETS) == version


def test_replace_keys_on_a_partitioned_table(tmp_path: Path) -> None:
    lake = Lakehouse(tmp_path / "lake", catalog=Catalog(SAAS.tables()))
    flow = SAAS.flows["silver.usage_daily"]
    usage = usage_rows(4)
    later = usage.with_columns(pl.col("usage_date") + timedelta(days=1))
    for day, frame in ((D1, usage), (D2, later)):
        write(tmp_path / "landing", "usage", frame, day)
        _bronze(lake, tmp_path / "landing", "usage", day)
        _silver(lake, flow, [day])
    write(tmp_path / "landing", "usage", later.head(2), D2)  # two rows withdrawn on day 2
    _bronze(lake, tmp_path / "landing", "usage", D2)
    _silver(lake, flow, [D2])
    silver = lake.read("silver.usage_daily")
    assert silver.height == 6
    assert silver.sort(flow.key).equals(_reference(flow, lake.read(flow.bronze)))
