"""The audit spool and its committer: fsynced lines, commits to Delta, torn lines, live workers'
rows committed in place, dead workers' spools adopted, one committer per spool, bounded reads,
and commits idempotent by request id (no duplicate after a crash)."""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest

from lakehouse.storage import Lakehouse
from models.usecase import load_use_cases
from orchestration.serving.audit import (
    LOCK,
    USE_CASE,
    ZERO_CHUNK,
    AuditCommitter,
    Spool,
    frame_of,
    read_segment,
    segments,
)

CHURN = load_use_cases()["churn"]
TABLE = CHURN.tables.scoring.online_predictions
SPEC = CHURN.table_spec(TABLE)
KEYS = ["request_id", "item", "role"]


def _row(request: str, item: int = 0, role: str = "champion", score: float = 0.25) -> dict:
    at = datetime(2025, 3, 17, 8, 30, 1, 123456, tzinfo=UTC)
    return {
        USE_CASE: "churn",
        "request_id": request,
        "item": item,
        "role": role,
        "served": role != "shadow",
        "request_date": at.date(),
        "requested_at": at,
        "customer_id": f"C{item}",
        "outcome": "scored",
        "status": 200,
        "score": score,
        "reason_codes": ["BIL01"],
        "reason_values": [1.5],
        "latency_ms": 1.25,
    }


@pytest.fixture
def lake(tmp_path: Path) -> Lakehouse:
    return load_use_cases().lakehouse(tmp_path / "lake")


def _writer(lake: Lakehouse, root: Path, **kwargs) -> AuditCommitter:
    return AuditCommitter(lake, {"churn": SPEC}, root, **kwargs)


def _table(lake: Lakehouse) -> pl.DataFrame:
    return lake.read(TABLE).sort(KEYS)


def _write_at_end(segment: Path, data: bytes) -> None:
    """Write where the segment's written part ends (its first NUL), as the spool would."""
    raw = segment.read_bytes()
    with segment.open("r+b") as handle:
        handle.seek(raw.index(b"\0"))
        handle.write(data)


def test_full_segments_roll_over_and_go_once_committed(lake: Lakehouse, tmp_path: Path) -> None:
    root = tmp_path / "spool"
    spool = Spool(root, "w1", segment_bytes=4096)
    writer = _writer(lake, root)
    for n in range(60):  # about 250 bytes a line: several segments
        spool.append([_row(f"r{n:02d}")])
    assert len(segments(spool.dir)) > 2
    assert all(p.stat().st_size == 4096 for p in segments(spool.dir))  # preallocated, in place
    writer.flush()
    assert len(segments(spool.dir)) == 1  # the open one
    big = [_row("big", item=i) for i in range(40)]  # one line larger than a segment
    spool.append(big)
    spool.append([_row("after")])
    writer.flush()
    table = _table(lake)
    assert table.height == 60 + 40 + 1
    assert table.select(KEYS).is_duplicated().sum() == 0
    spool.close()
    assert writer.flush().committed == 0
    assert not spool.dir.exists()  # a closed spool is the committer's to remove


def test_a_spare_segment_is_zero_filled_on_disk_and_used_next(tmp_path: Path) -> None:
    size = 3 * ZERO_CHUNK + 12_345  # written a chunk at a time, the last one short
    spool = Spool(tmp_path / "spool", "w1", segment_bytes=size)
    spool.prepare_spare()
    (spare,) = spool.dir.glob(".spare-*")
    assert spare.read_bytes() == bytes(size)
    assert spare.stat().st_blocks * 512 >= size  # real blocks: an fsync never extends it
    assert not spool.spare_needed.is_set()
    first = [_row("first", item=i) for i in range(size // 400)]  # about 250 bytes a line
    spool.append(first)
    assert not spool.spare_needed.is_set()
    second = [_row("second", item=i) for i in range(size // 400)]
    spool.append(second)  # does not fit in what is left: goes to the spare
    assert not spare.exists()
    assert spool.spare_needed.is_set()  # the next spare is asked for
    one, two = segments(spool.dir)
    assert two.name.startswith("000000000002") and two.stat().st_size == size
    assert len(read_segment(one)) == len(first) and len(read_segment(two)) == len(second)
    spool.close()


def test_spooled_rows_are_committed_then_their_segment_removed(
    lake: Lakehouse, tmp_path: Path
) -> None:
    root = tmp_path / "spool"
    spool = Spool(root, "w1")
    spool.append([_row("r1"), _row("r1", role="shadow")])
    spool.append([_row("r2")])
    [segment] = segments(spool.dir)
    assert len(read_segment(segment)) == 3  # on disk before any flush
    writer = _writer(lake, root)
    result = writer.flush()
    assert result.committed == 3
    table = _table(lake)
    assert table.select(KEYS).rows() == [
        ("r1", 0, "champion"),
        ("r1", 0, "shadow"),
        ("r2", 0, "champion"),
    ]
    assert table["requested_at"][0] == datetime(2025, 3, 17, 8, 30, 1, 123456, tzinfo=UTC)
    assert table["request_date"][0] == date(2025, 3, 17)
    assert table["reason_codes"][0].to_list() == ["BIL01"]
    assert writer.flush().committed == 0  # nothing new
    spool.append([_row("r3")])
    assert writer.flush().committed == 1  # only what came since
    assert _table(lake).height == 4
    spool.close()
    writer.flush()
    assert not spool.dir.exists()  # everything committed: nothing left behind


def test_live_workers_rows_are_committed_in_place_and_a_dead_workers_spool_removed(
    lake: Lakehouse, tmp_path: Path
) -> None:
    root = tmp_path / "spool"
    dead = Spool(root, "dead")
    dead.append([_row("r1")])
    dead.append([_row("r2"), _row("r2", role="shadow")])
    [segment] = segments(dead.dir)
    _write_at_end(segment, b'{"_use_case":"churn","request_id":"r3","item":0,"ro')  # in flight
    live = Spool(root, "live")
    live.append([_row("r9")])
    writer = _writer(lake, root)  # the supervisor's committer
    assert writer.flush().committed == 4  # complete requests of live workers, not r3
    assert dead.dir.exists() and segments(dead.dir)  # its worker still writes there
    os.close(dead._lock)  # the owner dies (kill -9 drops its flock): r3 was never answered
    result = writer.flush()
    assert (result.committed, result.segments) == (0, 1)
    assert set(_table(lake)["request_id"]) == {"r1", "r2", "r9"}
    assert not dead.dir.exists()
    assert live.dir.exists() and segments(live.dir)  # a live worker's folder stays
    live.append([_row("r10")])
    assert writer.flush().committed == 1  # only what came since
    live.close()


def test_one_committer_per_spool_and_a_new_one_commits_nothing_twice(
    lake: Lakehouse, tmp_path: Path
) -> None:
    """A second committer waits while the first holds the spool's lock; when it takes over it
    cannot know how far the first got, so it deduplicates what it finds."""
    root = tmp_path / "spool"
    spool = Spool(root, "w1")
    spool.append([_row("r1"), _row("r1", role="shadow")])
    first, second = _writer(lake, root), _writer(lake, root)
    assert first.flush().committed == 2
    assert second.flush().busy
    spool.append([_row("r2")])
    first.close()
    result = second.flush()
    assert (result.busy, result.committed, result.skipped) == (False, 1, 2)
    assert first.flush().busy  # the lock moved
    assert _table(lake)["request_id"].to_list() == ["r1", "r1", "r2"]
    spool.close()
    second.close()


def test_a_flush_reads_a_bounded_amount_and_goes_on_with_the_rest(
    lake: Lakehouse, tmp_path: Path
) -> None:
    root = tmp_path / "spool"
    spool = Spool(root, "w1", segment_bytes=8192)
    for n in range(100):  # about 25 KiB over several segments
        spool.append([_row(f"r{n:03d}")])
    commits: list[int] = []
    writer = _writer(lake, root, max_bytes=3000, on_commit=commits.append)
    assert writer.flush().committed == 100
    assert len(commits) > 5 and max(commits) * 250 < 4000  # many small reads, all of it
    assert _table(lake)["request_id"].to_list() == [f"r{n:03d}" for n in range(100)]
    assert len(segments(spool.dir)) == 1
    spool.close()


def test_rows_of_a_use_case_not_served_stay_spooled_and_block_no_one(
    lake: Lakehouse, tmp_path: Path
) -> None:
    root = tmp_path / "spool"
    other = Spool(root, "other")
    other.append([{**_row("x1"), USE_CASE: "retired"}])
    other.close()
    spool = Spool(root, "w1")
    spool.append([_row("r1")])
    writer = _writer(lake, root)
    assert writer.flush().committed == 1
    assert writer.backlog == 1
    spool.append([_row("r2")])
    assert writer.flush().committed == 1  # the others go on
    assert writer.backlog == 1
    assert segments(other.dir)  # kept until its use case is served again
    spool.close()
    writer.close()
    served = AuditCommitter(lake, {"churn": SPEC, "retired": SPEC}, root)
    assert served.flush().committed == 1
    assert not other.dir.exists()


def test_recommitting_a_segment_after_a_crash_adds_no_duplicates(
    lake: Lakehouse, tmp_path: Path
) -> None:
    """A committer killed between its Delta commit and the segment's removal leaves a segment
    whose rows are in the table already: committing it again adds only the rows that are not."""
    root = tmp_path / "spool"
    spool = Spool(root, "w1")
    spool.append([_row("r1"), _row("r1", role="shadow")])
    spool.append([_row("r2")])
    [segment] = segments(spool.dir)
    saved = tmp_path / "saved.jsonl"
    shutil.copy(segment, saved)
    first = _writer(lake, root)
    first.flush()
    first.close()  # the committer dies
    orphan = root / "killed"
    orphan.mkdir()
    (orphan / LOCK).touch()
    shutil.copy(saved, orphan / "000000000001.jsonl")
    _write_at_end(  # a request the killed worker spooled after the last commit
        orphan / "000000000001.jsonl",
        b'{"_use_case":"churn","request_id":"r3","item":0,"role":"champion",'
        b'"request_date":20164,"requested_at":1742200201123456}\n\n',
    )
    result = _writer(lake, root).flush()
    # The new committer reads both segments from their start: 6 rows held already, r3 is new.
    assert (result.committed, result.skipped) == (1, 6)
    table = _table(lake)
    assert table.select(KEYS).rows() == [
        ("r1", 0, "champion"),
        ("r1", 0, "shadow"),
        ("r2", 0, "champion"),
        ("r3", 0, "champion"),
    ]
    assert not orphan.exists()
    spool.close()


def test_a_failed_commit_is_retried_without_duplicates(
    lake: Lakehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The commit landed but the call failed afterwards: the retry must not append again."""
    root = tmp_path / "spool"
    spool = Spool(root, "w1")
    spool.append([_row("r1"), _row("r2")])
    append = lake.append

    def lands_then_fails(*args, **kwargs):
        append(*args, **kwargs)
        raise OSError("connection reset after the commit")

    writer = _writer(lake, root)
    monkeypatch.setattr(lake, "append", lands_then_fails)
    with pytest.raises(OSError):
        writer.flush()
    assert writer.backlog == 2
    monkeypatch.setattr(lake, "append", append)
    spool.append([_row("r3")])
    assert writer.flush().skipped == 2
    assert writer.backlog == 0
    writer.flush()
    assert _table(lake)["request_id"].to_list() == ["r1", "r2", "r3"]
    spool.close()


def test_a_spool_folder_belongs_to_one_worker(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "w1")
    with pytest.raises(FileExistsError):
        Spool(tmp_path, "w1")
    spool.close()


def test_spooled_values_come_back_exactly(tmp_path: Path) -> None:
    rows = [_row("r1", score=0.1 + 0.2), {**_row("r2"), "score": float("nan"), "latency_ms": None}]
    spool = Spool(tmp_path, "w1")
    spool.append(rows)
    [segment] = segments(spool.dir)
    frame = frame_of(read_segment(segment), SPEC)
    assert frame.schema == SPEC.polars_schema
    assert frame["score"][0] == 0.1 + 0.2
    assert frame["score"][1] is None  # NaN is spooled as null: no value
    assert frame["latency_ms"][1] is None
    assert frame["requested_at"][0] == rows[0]["requested_at"]
    spool.close()


def test_a_segment_of_the_earlier_one_array_a_request_format_is_read(tmp_path: Path) -> None:
    """Earlier versions spooled a JSON array per request (``NaN`` tokens included), a torn
    last line dropped: a dead worker's segment of that kind still commits."""
    rows = [_row("r1"), {**_row("r1", role="shadow"), "score": float("nan")}]
    spooled = [{**r, "requested_at": 1, "request_date": 2} for r in rows]
    segment = tmp_path / "000000000001.jsonl"
    torn = json.dumps([_row("r2")], default=str).encode()[:40]
    segment.write_bytes(json.dumps(spooled).encode() + b"\n" + torn + bytes(64))
    frame = frame_of(read_segment(segment), SPEC)
    assert frame["request_id"].to_list() == ["r1", "r1"]
    assert frame["score"].to_list() == [0.25, None]
    assert frame["request_date"].to_list() == [date(1970, 1, 3)] * 2


def test_a_torn_request_is_dropped_whole(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "w1")
    spool.append([_row("r1")])
    spool.append([_row("r2"), _row("r2", role="shadow")])
    [segment] = segments(spool.dir)
    data = segment.read_bytes().split(b"\0", 1)[0]
    first = data.index(b"\n\n") + 2  # the end of the first request
    for cut in range(1, len(data) + 1):  # a crash at every byte of the writes
        torn = tmp_path / "torn.jsonl"
        torn.write_bytes(data[:cut] + bytes(8))
        ids = frame_of(read_segment(torn), SPEC)["request_id"].to_list()
        expected = [] if cut < first else ["r1"] if cut < len(data) else ["r1", "r2", "r2"]
        assert ids == expected, cut
    spool.close()
