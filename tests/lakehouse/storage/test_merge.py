from datetime import date

import polars as pl
import pytest

from lakehouse.errors import SchemaMismatchError
from lakehouse.storage import Lakehouse

from .conftest import events

D1, D2 = date(2025, 1, 1), date(2025, 1, 2)


def test_merge_updates_matches_and_inserts_new_keys(lake: Lakehouse) -> None:
    lake.merge("test.events", events([1, 2], D1, amount=1.0, hour=1))
    lake.merge("test.events", pl.concat([events([2], D1, 5.0, 2), events([3], D2, 7.0, 2)]))
    table = lake.read("test.events").sort("event_id")
    assert table["event_id"].to_list() == [1, 2, 3]
    assert table["amount"].to_list() == [1.0, 5.0, 7.0]
    assert lake.history("test.events")[0]["scorehouse.operation"] == "merge"


def test_merge_is_idempotent(lake: Lakehouse) -> None:
    batch = events([1, 2, 3], D1)
    for _ in range(3):
        lake.merge("test.events", batch)
    assert lake.read("test.events").height == 3


def test_merge_never_lets_an_older_record_win(lake: Lakehouse) -> None:
    lake.merge("test.events", events([1], D1, amount=2.0, hour=5))
    lake.merge("test.events", events([1], D1, amount=1.0, hour=3))  # late, out-of-order
    assert lake.read("test.events")["amount"].to_list() == [2.0]


def test_merge_refuses_duplicate_keys_in_the_source(lake: Lakehouse) -> None:
    lake.merge("test.events", events([1], D1))
    with pytest.raises(SchemaMismatchError, match=r"1 rows of the merge source repeat"):
        lake.merge("test.events", events([2, 2], D1))
    assert lake.version("test.events") == 0


def test_merge_touches_only_partitions_in_the_source(lake: Lakehouse) -> None:
    lake.merge("test.events", events([1], D1))
    lake.merge("test.events", events([2], D2))
    files_before = {p for p in lake.delta_table("test.events").file_uris() if "day=2025-01-01" in p}
    lake.merge("test.events", events([2], D2, amount=3.0, hour=4))
    files_after = {p for p in lake.delta_table("test.events").file_uris() if "day=2025-01-01" in p}
    assert files_before == files_after
