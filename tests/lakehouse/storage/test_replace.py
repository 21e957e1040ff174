from datetime import date
from pathlib import Path

import polars as pl
import pytest

from lakehouse.errors import LakehouseError
from lakehouse.storage import Lakehouse

from .conftest import events

D1, D2 = date(2025, 1, 1), date(2025, 1, 2)


def test_replace_partition_swaps_only_that_partition(lake: Lakehouse) -> None:
    lake.append("test.events", events([1, 2], D1))
    lake.append("test.events", events([3, 4], D2))
    result = lake.replace("test.events", events([5], D2), partition={"day": D2})
    assert result.operation == "replace"
    table = lake.read("test.events").sort("event_id")
    assert table["event_id"].to_list() == [1, 2, 5]
    assert lake.history("test.events")[0]["scorehouse.operation"] == "replace"


def test_replace_partition_is_idempotent(lake: Lakehouse) -> None:
    for _ in range(3):
        lake.replace("test.events", events([1, 2, 3], D1), partition={"day": D1})
    assert lake.read("test.events").height == 3
    assert lake.version("test.events") == 2


def test_replace_refuses_rows_outside_the_partition(lake: Lakehouse) -> None:
    lake.append("test.events", events([1], D1))
    mixed = pl.concat([events([2], D1), events([3], D2)])
    with pytest.raises(LakehouseError, match=r"1 of 2 rows have day != .*nothing written"):
        lake.replace("test.events", mixed, partition={"day": D1})
    assert lake.version("test.events") == 0


def test_replace_with_predicate(lake: Lakehouse) -> None:
    lake.append("test.events", events([1, 2, 3], D1, amount=1.0))
    replacement = events([2], D1, amount=9.0)
    lake.replace("test.events", replacement, predicate="event_id = 2")
    table = lake.read("test.events").sort("event_id")
    assert table["event_id"].to_list() == [1, 2, 3]
    assert table["amount"].to_list() == [1.0, 9.0, 1.0]
    with pytest.raises(LakehouseError, match="do not match the replace predicate"):
        lake.replace("test.events", events([7], D1), predicate="event_id = 2")


def test_whole_table_replace(lake: Lakehouse) -> None:
    lake.append("test.events", events([1, 2], D1))
    lake.replace("test.events", events([9], D2))
    assert lake.read("test.events")["event_id"].to_list() == [9]
    assert lake.read("test.events", version=0).height == 2


def test_append_only_table_refuses_replace_and_merge(lake: Lakehouse) -> None:
    log = pl.DataFrame({"id": [1], "message": ["scored"]})
    lake.append("test.audit_log", log)
    with pytest.raises(LakehouseError, match="append-only"):
        lake.replace("test.audit_log", log)
    with pytest.raises(LakehouseError, match="append-only"):
        lake.merge("test.audit_log", log)


def test_replace_several_partitions_in_one_commit(lake: Lakehouse) -> None:
    D3 = date(2025, 1, 3)
    lake.append("test.events", pl.concat([events([1], D1), events([2], D2), events([3], D3)]))
    fresh = pl.concat([events([10], D1), events([20, 21], D2)])
    lake.replace("test.events", fresh, partition={"day": [D1, D2]})
    assert lake.version("test.events") == 1
    assert sorted(lake.read("test.events")["event_id"].to_list()) == [3, 10, 20, 21]
    with pytest.raises(LakehouseError, match=r"1 of 1 rows have day not in"):
        lake.replace("test.events", events([9], D3), partition={"day": [D1, D2]})


def _parquet_files(lake: Lakehouse) -> int:
    return len(list((Path(lake.table_uri("test.events"))).rglob("*.parquet")))


def test_staged_replace_writes_chunk_by_chunk_and_commits_once(lake: Lakehouse) -> None:
    D3 = date(2025, 1, 3)
    lake.append("test.events", pl.concat([events([1], D1), events([2], D2), events([3], D3)]))
    files = _parquet_files(lake)
    with lake.staged_replace("test.events", partition={"day": [D1, D2]}) as staged:
        staged.write(events([10, 11], D1))
        assert _parquet_files(lake) == files + 1  # written now ...
        assert lake.version("test.events") == 0  # ... but not visible
        staged.write(events([20], D2))
    assert staged.result is not None
    assert (staged.result.version, staged.result.rows) == (1, 3)
    assert sorted(lake.read("test.events")["event_id"].to_list()) == [3, 10, 11, 20]
    assert [h["scorehouse.operation"] for h in lake.history("test.events")] == ["replace", "append"]


def test_staged_replace_that_fails_commits_nothing(lake: Lakehouse) -> None:
    lake.append("test.events", pl.concat([events([1], D1), events([2], D2)]))
    with (
        pytest.raises(RuntimeError, match="day 2 is bad"),
        lake.staged_replace("test.events", partition={"day": [D1, D2]}) as staged,
    ):
        staged.write(events([10], D1))
        raise RuntimeError("day 2 is bad")
    assert lake.version("test.events") == 0
    assert sorted(lake.read("test.events")["event_id"].to_list()) == [1, 2]


def test_staged_replace_refuses_rows_outside_its_partitions(lake: Lakehouse) -> None:
    lake.append("test.events", events([1], D1))
    with (
        pytest.raises(LakehouseError, match=r"1 of 1 rows have day != .*nothing written"),
        lake.staged_replace("test.events", partition={"day": D1}) as staged,
    ):
        staged.write(events([2], D2))
    assert lake.version("test.events") == 0
    with pytest.raises(ValueError, match="names no values"):
        lake.staged_replace("test.events", partition={"day": []})
    with pytest.raises(LakehouseError, match="append-only"):
        lake.staged_replace("test.audit_log", partition={"id": 1})


def test_staged_replace_empties_named_partitions_it_wrote_nothing_to(lake: Lakehouse) -> None:
    lake.append("test.events", pl.concat([events([1], D1), events([2], D2)]))
    with lake.staged_replace("test.events", partition={"day": [D1, D2]}) as staged:
        staged.write(events([10], D1))
    assert lake.read("test.events")["event_id"].to_list() == [10]
