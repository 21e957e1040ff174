"""The lakehouse on an object store (``s3://`` on a local S3 emulator): the same fast write
path and statistics as local folders, reads, time travel, history, vacuum, concurrent writers,
refused credentials and an emulator that goes away mid-write."""

from __future__ import annotations

import dataclasses
import re
import time
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest
from deltalake import DeltaTable

from lakehouse.catalog import Catalog
from lakehouse.errors import RetentionError, StorageAccessError, VersionNotAvailableError
from lakehouse.maintenance import vacuum
from lakehouse.storage import Lakehouse, _access_problem
from tests.s3 import S3Emulator

from .conftest import EVENTS, LOG, events
from .test_concurrency import check_log
from .writers import run_writers

D1, D2 = date(2025, 1, 1), date(2025, 1, 2)
OUR_FILE = re.compile(r"part-[0-9a-f]{32}\.zstd\.parquet$")  # polars-written, not delta-rs'


def s3_lake(emulator: S3Emulator, catalog: Catalog | None = None, **options: str) -> Lakehouse:
    """A lakehouse in a fresh bucket of ``emulator``."""
    return Lakehouse(
        f"s3://{emulator.create_bucket()}/lake",
        catalog=catalog or Catalog([EVENTS, LOG]),
        storage_options=emulator.storage_options(**options),
    )


@pytest.fixture
def s3(s3_emulator: S3Emulator) -> Lakehouse:
    return s3_lake(s3_emulator)


def _stats(lake: Lakehouse) -> pl.DataFrame:
    actions = pl.DataFrame(lake.delta_table("test.events").get_add_actions(flatten=True))
    return actions.drop("path", "size_bytes", "modification_time").sort("min.event_id")


def test_object_store_writes_take_the_fast_path_with_the_same_statistics(
    s3: Lakehouse, lake: Lakehouse
) -> None:
    frame = pl.concat([events([1, 2, 3], D1, amount=2.5), events([7, 9], D2, amount=4.0)])
    for target in (s3, lake):
        target.append("test.events", frame)
    files = s3.delta_table("test.events").file_uris()
    assert len(files) == 2 and all(OUR_FILE.search(f) for f in files)
    assert all(f.startswith(s3.table_uri("test.events") + "/day=") for f in files)
    assert _stats(s3).equals(_stats(lake))  # num_records, min, max, null counts per file
    assert s3.read("test.events").sort("event_id").equals(frame.sort("event_id"))
    assert s3.read("test.events", where=pl.col("event_id") > 5)["event_id"].to_list() == [7, 9]
    assert s3.row_count("test.events") == 5


def test_time_travel_history_and_every_write_on_an_object_store(s3: Lakehouse) -> None:
    s3.append("test.events", events([1, 2], D1))
    time.sleep(1.1)  # S3 reports modification times to the second; as_of goes by them
    between = datetime.now(UTC)
    time.sleep(1.1)
    s3.replace("test.events", events([3], D1), partition={"day": D1})
    s3.merge("test.events", pl.concat([events([3], D1, 5.0, 2), events([4], D2, 6.0, 2)]))
    s3.replace("test.events", events([4], D2, 8.0, 3), predicate="event_id = 4")
    with s3.staged_replace("test.events", partition={"day": [D1, D2]}) as staged:
        staged.write(events([5], D1))
        staged.write(events([6], D2))
    history = s3.history("test.events")
    assert [h["scorehouse.operation"] for h in history] == [
        "replace",
        "replace",
        "merge",
        "replace",
        "append",
    ]
    assert [h["version"] for h in history] == [4, 3, 2, 1, 0]
    assert staged.result is not None and staged.result.version == 4
    assert sorted(s3.read("test.events", version=0)["event_id"].to_list()) == [1, 2]
    assert s3.read("test.events", version=1)["event_id"].to_list() == [3]
    at_3 = s3.read("test.events", version=3).sort("event_id")
    assert at_3["amount"].to_list() == [5.0, 8.0]
    assert sorted(s3.read("test.events", as_of=between)["event_id"].to_list()) == [1, 2]
    assert sorted(s3.read("test.events")["event_id"].to_list()) == [5, 6]


def test_vacuum_guard_and_vacuumed_versions_on_an_object_store(s3_emulator: S3Emulator) -> None:
    short = dataclasses.replace(EVENTS, retention_days=0)
    lake = s3_lake(s3_emulator, Catalog([short, LOG]))
    lake.append("test.events", events([1], D1))
    lake.replace("test.events", events([2], D1), partition={"day": D1})
    lake.replace("test.events", events([3], D1), partition={"day": D1})
    strict = Lakehouse(
        lake.uri, catalog=Catalog([EVENTS, LOG]), storage_options=lake.storage_options
    )
    with pytest.raises(RetentionError, match=r"test.events: vacuum with 0 h retention refused"):
        vacuum(strict, "test.events", retention_hours=0, dry_run=False)

    removed = vacuum(lake, "test.events", protected_versions=[1], dry_run=False)
    assert len(removed.files) == 1  # version 0's file; version 1 is protected
    assert lake.read("test.events", version=1)["event_id"].to_list() == [2]
    with pytest.raises(VersionNotAvailableError, match=r"version 0 refers to 1 data files"):
        lake.read("test.events", version=0)


@pytest.mark.slow
def test_eight_writers_append_ten_times_each_and_lose_no_commit(
    s3_emulator: S3Emulator, tmp_path: Path
) -> None:
    lake = s3_lake(s3_emulator)
    lake.create_if_missing("test.events")
    acknowledged = run_writers(
        lake.uri, "append", 8, 10, tmp_path, storage_options=lake.storage_options
    )
    assert len(acknowledged) == 80
    table = DeltaTable(lake.table_uri("test.events"), storage_options=lake.storage_options)
    check_log(table, acknowledged)
    assert table.version() == 80
    ids = sorted(pl.from_arrow(table.to_pyarrow_table())["event_id"].to_list())
    assert ids == sorted(i for ack in acknowledged for i in ack["ids"])


def test_wrong_credentials_name_the_table_and_the_setting(tmp_path: Path) -> None:
    with S3Emulator(tmp_path / "s3", auth=True) as emulator:
        lake = s3_lake(emulator)
        lake.append("test.events", events([1], D1))
        wrong = Lakehouse(
            lake.uri,
            catalog=lake.catalog,
            storage_options=emulator.storage_options(AWS_SECRET_ACCESS_KEY="not-the-secret"),
        )
        expected = (
            r"test\.events: the object store refused the credentials for s3://.*/lake/test/events"
            r" \(.*403.*\); check the endpoint and credentials in SCOREHOUSE_STORAGE_OPTIONS"
        )
        for attempt in (
            lambda: wrong.append("test.events", events([2], D1)),
            lambda: wrong.read("test.events"),
            lambda: wrong.exists("test.events"),
        ):
            with pytest.raises(StorageAccessError, match=expected):
                attempt()
        assert lake.version("test.events") == 0
        assert lake.read("test.events")["event_id"].to_list() == [1]


@pytest.mark.parametrize("moment", ["files", "commit"])
def test_an_emulator_restart_mid_write_fails_it_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, moment: str
) -> None:
    """The store goes away while the data files upload, or just before the commit; the write
    fails naming the table, and after the restart the table is as it was and writable."""
    with S3Emulator(tmp_path / "s3", durable=True) as emulator:
        lake = s3_lake(emulator, max_retries="1", retry_timeout="2s")
        lake.append("test.events", events([1], D1))
        cls, method = (
            (pl.DataFrame, "write_parquet")
            if moment == "files"
            else (DeltaTable, "create_write_transaction")
        )
        original = getattr(cls, method)

        def store_goes_away(self, *args, **kwargs):
            emulator.stop()
            return original(self, *args, **kwargs)

        monkeypatch.setattr(cls, method, store_goes_away)
        with pytest.raises(
            StorageAccessError, match=r"test\.events: the object store could not be reached"
        ):
            lake.append("test.events", events([2], D1))
        monkeypatch.undo()
        emulator.restart()
        assert lake.version("test.events") == 0
        assert lake.read("test.events", version=0)["event_id"].to_list() == [1]
        assert lake.append("test.events", events([3], D1)).version == 1
        assert sorted(lake.read("test.events")["event_id"].to_list()) == [1, 3]


@pytest.mark.parametrize(
    ("message", "problem"),
    [
        # An outage whose timing happens to hold the digits 403 is still an outage.
        (
            "Generic S3 error: Error performing PUT http://127.0.0.1:55383/b/lake/t/part-cf34.parquet"
            " in 251.074036ms, after 1 retries - HTTP error: error sending request",
            "could not be reached",
        ),
        ("Error performing GET in 30s - connection refused", "could not be reached"),
        ("Client error with status 403 Forbidden: <Code>AccessDenied", "refused the credentials"),
        ("status 403: <Code>SignatureDoesNotMatch</Code>", "refused the credentials"),
        ("Object at location lake/t/part-4031.parquet not found", None),
    ],
)
def test_access_problems_are_told_apart_by_their_words_not_by_stray_digits(
    message: str, problem: str | None
) -> None:
    assert _access_problem(OSError(message)) == problem
