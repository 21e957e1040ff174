from datetime import date

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
