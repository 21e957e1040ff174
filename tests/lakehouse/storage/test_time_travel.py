import time
from datetime import UTC, date, datetime

import polars as pl
import pytest

from lakehouse.errors import VersionNotAvailableError
from lakehouse.storage import Lakehouse

from .conftest import events

D1 = date(2025, 1, 1)


def test_read_at_version_and_history(lake: Lakehouse) -> None:
    lake.append("test.events", events([1], D1))
    lake.append("test.events", events([2], D1))
    lake.replace("test.events", events([3], D1), partition={"day": D1})
    assert lake.read("test.events", version=0)["event_id"].to_list() == [1]
    assert sorted(lake.read("test.events", version=1)["event_id"].to_list()) == [1, 2]
    assert lake.read("test.events")["event_id"].to_list() == [3]
    history = lake.history("test.events")
    assert [h["version"] for h in history] == [2, 1, 0]
    assert [h["scorehouse.operation"] for h in history] == ["replace", "append", "append"]


def test_read_as_of_timestamp(lake: Lakehouse) -> None:
    lake.append("test.events", events([1], D1))
    time.sleep(0.05)
    between = datetime.now(UTC)
    time.sleep(0.05)
    lake.append("test.events", events([2], D1))
    assert lake.read("test.events", as_of=between)["event_id"].to_list() == [1]
    assert lake.read("test.events").height == 2


def test_scan_is_lazy_and_prunes_partitions(lake: Lakehouse) -> None:
    lake.append("test.events", events([1, 2], D1))
    lake.append("test.events", events([3], date(2025, 1, 2)))
    lazy = lake.scan("test.events").filter(pl.col("day") == D1)
    assert isinstance(lazy, pl.LazyFrame)
    assert lazy.collect()["event_id"].sort().to_list() == [1, 2]


def test_unknown_version_is_a_clear_error(lake: Lakehouse) -> None:
    lake.append("test.events", events([1], D1))
    with pytest.raises(VersionNotAvailableError, match=r"test\.events: version 7"):
        lake.read("test.events", version=7)


def test_as_of_before_the_first_commit_is_not_version_zero(lake: Lakehouse) -> None:
    before = datetime.now(UTC)
    time.sleep(1.1)  # commit timestamps are read back to the millisecond
    lake.append("test.events", events([1], D1))
    with pytest.raises(VersionNotAvailableError, match="its first commit is later"):
        lake.read("test.events", as_of=before)
