"""Writer processes for the concurrency tests: each one is its own Python process.

    python -m tests.lakehouse.storage.writers ROOT SCENARIO WRITER WRITES START_AT OUT

writes ``WRITES`` times into ``test.events`` under ``ROOT`` (a folder or ``s3://`` URI, with
``SCOREHOUSE_STORAGE_OPTIONS``), starting at the wall-clock time ``START_AT`` so that every
writer races the others, and records what each write acknowledged in the JSON file ``OUT``.
``run_writers`` starts N of them and collects their records.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from lakehouse.catalog import Catalog
from lakehouse.commit import CommitInfo
from lakehouse.storage import Lakehouse
from tests.lakehouse.storage.conftest import EVENTS, LOG

D0 = date(2025, 1, 1)
SHARED_KEYS = [1, 2, 3, 4, 5]
SCENARIOS = ("append", "replace", "merge-disjoint", "merge-overlapping")


def frame(ids: list[int], day: date, marker: float, stamp: datetime) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "event_id": ids,
            "customer_id": [f"C{i % 3}" for i in ids],
            "amount": [marker] * len(ids),
            "updated_at": [stamp] * len(ids),
            "day": [day] * len(ids),
        },
        schema=EVENTS.polars_schema,
    )


def write_many(lake: Lakehouse, scenario: str, writer: int, writes: int) -> list[dict[str, Any]]:
    """``writes`` writes of ``scenario`` by ``writer``; what each one acknowledged.

    append / replace / merge-disjoint: writer ``w`` writes event ``w*1000+i`` into its own day.
    merge-overlapping: every writer upserts ``SHARED_KEYS`` on day ``D0``, with a timestamp
    unique to the write.
    """
    acknowledged = []
    for i in range(writes):
        day = D0 if scenario == "merge-overlapping" else D0 + timedelta(days=writer)
        ids = SHARED_KEYS if scenario == "merge-overlapping" else [writer * 1000 + i]
        marker = float(writer * 1000 + i)
        stamp = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(seconds=i * 100 + writer)
        rows = frame(ids, day, marker, stamp)
        commit = CommitInfo(run_id=f"writer-{writer}", extra={"writer": f"{writer}:{i}"})
        if scenario == "append":
            result = lake.append("test.events", rows, commit=commit)
        elif scenario == "replace":
            result = lake.replace("test.events", rows, partition={"day": day}, commit=commit)
        else:
            result = lake.merge("test.events", rows, commit=commit)
        acknowledged.append(
            {
                "tag": f"{writer}:{i}",
                "version": result.version,
                "attempts": result.attempts,
                "ids": ids,
                "marker": marker,
                "stamp": stamp.isoformat(),
                "day": day.isoformat(),
            }
        )
    return acknowledged


def run_writers(
    root: str,
    scenario: str,
    writers: int,
    writes: int,
    workdir: Path,
    storage_options: dict[str, str] | None = None,
    timeout_s: float = 300,
) -> list[dict[str, Any]]:
    """Start ``writers`` writer processes together; every acknowledged write, with
    ``stamp`` and ``day`` parsed back."""
    env = {**os.environ}
    if storage_options:
        env["SCOREHOUSE_STORAGE_OPTIONS"] = json.dumps(storage_options)
    start_at = time.time() + 3.0  # time for every process to import and be ready
    outs = [workdir / f"writer-{w}.json" for w in range(writers)]
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", __name__, root, scenario, *map(str, (w, writes, start_at, out))],
            env=env,
            cwd=Path(__file__).resolve().parents[3],
            stderr=subprocess.PIPE,
        )
        for w, out in enumerate(outs)
    ]
    failures = []
    for w, process in enumerate(processes):
        _, stderr = process.communicate(timeout=timeout_s)
        if process.returncode != 0 or not outs[w].exists():
            failures.append(f"writer {w} exited {process.returncode}: {stderr.decode()[-3000:]}")
    assert not failures, "\n".join(failures)
    acknowledged = [ack for out in outs for ack in json.loads(out.read_text())]
    for ack in acknowledged:
        ack["stamp"] = datetime.fromisoformat(ack["stamp"])
        ack["day"] = date.fromisoformat(ack["day"])
    return acknowledged


def main(argv: list[str]) -> None:
    root, scenario, writer, writes, start_at, out = argv
    lake = Lakehouse(root, catalog=Catalog([EVENTS, LOG]))
    time.sleep(max(0.0, float(start_at) - time.time()))
    acknowledged = write_many(lake, scenario, int(writer), int(writes))
    Path(out).write_text(json.dumps(acknowledged))


if __name__ == "__main__":
    main(sys.argv[1:])
