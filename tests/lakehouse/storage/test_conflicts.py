"""Which lost races a write retries, and how it refuses the others.

Each test lets a second writer commit between our snapshot and our commit (it runs just before
our first commit call), then checks the outcome against the Delta log.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date

import polars as pl
import pytest
from deltalake import DeltaTable
from deltalake.table import TableMerger

from lakehouse.catalog import Catalog, TableSpec
from lakehouse.commit import CommitInfo, RetryPolicy
from lakehouse.errors import ConcurrentWriteError
from lakehouse.storage import Lakehouse

from .conftest import EVENTS, LOG, events

D1, D2 = date(2025, 1, 1), date(2025, 1, 2)


def race(monkeypatch: pytest.MonkeyPatch, cls: type, method: str, winner: Callable[[], object]):
    """Run ``winner`` once, just before the first ``cls.method`` call (our commit)."""
    original = getattr(cls, method)
    ran: list[bool] = []

    def first_the_winner(self, *args, **kwargs):
        if not ran:
            ran.append(True)
            winner()
        return original(self, *args, **kwargs)

    monkeypatch.setattr(cls, method, first_the_winner)


def other(lake: Lakehouse, spec: TableSpec = EVENTS) -> Lakehouse:
    return Lakehouse(lake.uri, catalog=Catalog([spec, LOG]))


def test_replace_retries_after_a_replace_of_another_partition(lake, monkeypatch) -> None:
    lake.append("test.events", pl.concat([events([1], D1), events([2], D2)]))
    race(
        monkeypatch,
        DeltaTable,
        "create_write_transaction",
        lambda: other(lake).replace("test.events", events([20], D2), partition={"day": D2}),
    )
    result = lake.replace("test.events", events([10], D1), partition={"day": D1})
    assert (result.version, result.attempts) == (2, 2)
    history = lake.history("test.events")
    assert history[0]["scorehouse.attempts"] == 2 and history[0]["version"] == 2
    assert sorted(lake.read("test.events")["event_id"].to_list()) == [10, 20]


def test_two_replaces_of_one_partition_fail_naming_both(lake, monkeypatch) -> None:
    lake.append("test.events", events([1], D1))
    winner = CommitInfo(run_id="run-winner", partition="2025-01-01")
    race(
        monkeypatch,
        DeltaTable,
        "create_write_transaction",
        lambda: other(lake).replace(
            "test.events", events([2], D1), partition={"day": D1}, commit=winner
        ),
    )
    with pytest.raises(ConcurrentWriteError) as info:
        lake.replace("test.events", events([3], D1), partition={"day": D1})
    message = str(info.value)
    assert message.startswith("test.events: our replace (day in ['2025-01-01'])")
    assert "version 1 (replace, run run-winner, partition 2025-01-01)" in message
    assert "changed data in the partitions this write replaces" in message
    assert lake.version("test.events") == 1  # the winner's commit, nothing of ours
    assert lake.read("test.events")["event_id"].to_list() == [2]


def test_an_append_into_a_replaced_partition_is_not_overwritten(lake, monkeypatch) -> None:
    lake.append("test.events", events([1], D1))
    race(
        monkeypatch,
        DeltaTable,
        "create_write_transaction",
        lambda: other(lake).append("test.events", events([2], D1)),
    )
    with pytest.raises(ConcurrentWriteError, match=r"conflicts with version 1 \(append"):
        lake.replace("test.events", events([3], D1), partition={"day": D1})
    assert sorted(lake.read("test.events")["event_id"].to_list()) == [1, 2]


def test_a_concurrent_schema_change_fails_the_append(lake, monkeypatch) -> None:
    lake.append("test.events", events([1], D1))
    evolved = TableSpec(
        name="test.events",
        schema={**EVENTS.schema, "channel": pl.String},
        description=EVENTS.description,
        partition_by=EVENTS.partition_by,
        primary_key=EVENTS.primary_key,
        additive_evolution=True,
    )
    race(
        monkeypatch,
        DeltaTable,
        "create_write_transaction",
        lambda: other(lake, evolved).append(
            "test.events", events([2], D1).with_columns(pl.lit("web").alias("channel"))
        ),
    )
    with pytest.raises(ConcurrentWriteError) as info:
        lake.append("test.events", events([3], D1))
    message = str(info.value)
    assert "test.events: our append (blind append) conflicts with version 1" in message
    assert "changed the schema to one the catalog does not allow" in message
    assert "channel: in the table, not in the catalog" in message
    assert sorted(lake.read("test.events")["event_id"].to_list()) == [1, 2]


def test_a_merge_is_replanned_against_the_winners_rows(lake, monkeypatch) -> None:
    lake.merge("test.events", events([1, 2], D1, amount=1.0, hour=1))
    race(
        monkeypatch,
        TableMerger,
        "execute",
        lambda: other(lake).merge("test.events", events([1], D1, amount=9.0, hour=9)),
    )
    # Ours is newer for key 2 but older for key 1: the re-planned merge must see the winner's
    # hour-9 row for key 1 and leave it.
    ours = pl.concat([events([1], D1, amount=5.0, hour=5), events([2], D1, amount=5.0, hour=5)])
    result = lake.merge("test.events", ours)
    assert (result.version, result.attempts) == (2, 2)
    table = lake.read("test.events").sort("event_id")
    assert table["amount"].to_list() == [9.0, 5.0]
    assert lake.history("test.events")[0]["scorehouse.attempts"] == 2


def test_retries_stop_at_the_policy_bound(lake, monkeypatch) -> None:
    lake.append("test.events", pl.concat([events([1], D1), events([2], D2)]))
    once = Lakehouse(lake.uri, catalog=lake.catalog, retry=RetryPolicy(max_attempts=1))
    race(
        monkeypatch,
        DeltaTable,
        "create_write_transaction",
        lambda: other(lake).replace("test.events", events([20], D2), partition={"day": D2}),
    )
    with pytest.raises(ConcurrentWriteError, match=r"replace gave up after 1 attempts .*version 1"):
        once.replace("test.events", events([10], D1), partition={"day": D1})
    assert sorted(lake.read("test.events")["event_id"].to_list()) == [1, 20]


def test_back_off_grows_exponentially_with_jitter_and_a_cap() -> None:
    policy = RetryPolicy(base_delay_s=0.1, max_delay_s=1.0)
    rng = random.Random(7)
    for attempt in range(1, 12):
        ceiling = min(1.0, 0.1 * 2 ** (attempt - 1))
        delays = [policy.delay(attempt, rng) for _ in range(200)]
        assert ceiling / 2 <= min(delays) and max(delays) <= ceiling
        assert max(delays) - min(delays) > ceiling / 4  # jitter spreads racing writers
    with pytest.raises(ValueError, match="attempts >= 1"):
        RetryPolicy(max_attempts=0)


def test_every_commit_records_its_id_and_attempts(lake) -> None:
    first = lake.append("test.events", events([1], D1))
    second = lake.merge("test.events", events([2], D1))
    history = lake.history("test.events")
    ids = [entry["scorehouse.commit_id"] for entry in history]
    assert len(set(ids)) == 2 and all(len(i) == 32 for i in ids)
    assert [entry["scorehouse.attempts"] for entry in history] == [1, 1]
    assert [second.version, first.version] == [entry["version"] for entry in history]
