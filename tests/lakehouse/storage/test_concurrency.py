"""Concurrent writers: N processes × M writes into one table lose nothing, duplicate nothing,
and every write reports the version of its own commit.

The reference is the Delta log itself (``DeltaTable.history()``: each write tags its commit with
``scorehouse.writer``) and the data read back at each reported version.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
from deltalake import DeltaTable

from lakehouse.catalog import Catalog
from lakehouse.storage import Lakehouse

from .conftest import EVENTS, LOG
from .writers import D0, SHARED_KEYS, frame, run_writers

WRITERS, WRITES = 4, 8


def _run(root: Path, scenario: str) -> list[dict[str, Any]]:
    lake = Lakehouse(root / "lake", catalog=Catalog([EVENTS, LOG]))
    if scenario == "merge-overlapping":  # start from a table holding the shared keys
        lake.merge("test.events", frame(SHARED_KEYS, D0, -1.0, datetime(2024, 1, 1, tzinfo=UTC)))
    else:
        lake.create_if_missing("test.events")
    return run_writers(str(root / "lake"), scenario, WRITERS, WRITES, root)


def check_log(
    table: DeltaTable, acknowledged: list[dict[str, Any]], *, no_ops: int = 0
) -> dict[int, dict[str, Any]]:
    """Every acknowledged write has exactly one commit, at the version it reported, with the
    attempts it reported (but ``no_ops`` merges that changed nothing and so made no commit)."""
    history = {entry["version"]: entry for entry in table.history()}
    tagged = {e["scorehouse.writer"]: e for e in history.values() if "scorehouse.writer" in e}
    assert len(tagged) == len(acknowledged) - no_ops
    for ack in acknowledged:
        if ack["tag"] in tagged:
            entry = history[ack["version"]]
            assert entry["scorehouse.writer"] == ack["tag"], ack
            assert entry["scorehouse.attempts"] == ack["attempts"]
    committed = [ack["version"] for ack in acknowledged if ack["tag"] in tagged]
    assert len(set(committed)) == len(committed)
    return history


def _table(root: Path) -> DeltaTable:
    return DeltaTable(str(root / "lake" / "test" / "events"))


def test_concurrent_appends_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    acknowledged = _run(tmp_path, "append")
    assert len(acknowledged) == WRITERS * WRITES
    check_log(_table(tmp_path), acknowledged)
    rows = pl.from_arrow(_table(tmp_path).to_pyarrow_table())
    expected = sorted(i for ack in acknowledged for i in ack["ids"])
    assert sorted(rows["event_id"].to_list()) == expected


def test_concurrent_replaces_of_disjoint_partitions_all_land(tmp_path: Path) -> None:
    acknowledged = _run(tmp_path, "replace")
    assert len(acknowledged) == WRITERS * WRITES
    check_log(_table(tmp_path), acknowledged)
    lake = Lakehouse(tmp_path / "lake", catalog=Catalog([EVENTS, LOG]))
    for ack in acknowledged:  # at its version, the write's partition holds exactly its rows
        mine = lake.read("test.events", version=ack["version"], where=pl.col("day") == ack["day"])
        assert mine["event_id"].to_list() == ack["ids"], ack
    last = [ack for ack in acknowledged if ack["tag"].endswith(f":{WRITES - 1}")]
    latest = lake.read("test.events").sort("event_id")
    assert latest["event_id"].to_list() == sorted(a["ids"][0] for a in last)


def test_concurrent_merges_of_disjoint_keys_all_land(tmp_path: Path) -> None:
    acknowledged = _run(tmp_path, "merge-disjoint")
    assert len(acknowledged) == WRITERS * WRITES
    check_log(_table(tmp_path), acknowledged)
    rows = pl.from_arrow(_table(tmp_path).to_pyarrow_table())
    assert sorted(rows["event_id"].to_list()) == sorted(a["ids"][0] for a in acknowledged)
    assert sorted(rows["amount"].to_list()) == sorted(a["marker"] for a in acknowledged)


def test_concurrent_merges_of_overlapping_keys_keep_the_newest(tmp_path: Path) -> None:
    acknowledged = _run(tmp_path, "merge-overlapping")
    assert len(acknowledged) == WRITERS * WRITES
    lake = Lakehouse(tmp_path / "lake", catalog=Catalog([EVENTS, LOG]))
    tags = {entry.get("scorehouse.writer") for entry in lake.history("test.events")}
    # A merge whose rows were all older than the table's made no commit: at the version it
    # reports, every shared key already had a newer (or equal) update.
    no_ops = [ack for ack in acknowledged if ack["tag"] not in tags]
    for ack in no_ops:
        seen = lake.read("test.events", version=ack["version"])
        assert seen["updated_at"].min() >= ack["stamp"], ack
    check_log(_table(tmp_path), acknowledged, no_ops=len(no_ops))
    table = lake.read("test.events").sort("event_id")
    newest = max(acknowledged, key=lambda ack: ack["stamp"])  # brute force over every write
    assert table["event_id"].to_list() == SHARED_KEYS
    assert table["amount"].to_list() == [newest["marker"]] * len(SHARED_KEYS)
    assert table["updated_at"].to_list() == [newest["stamp"]] * len(SHARED_KEYS)
