"""A table read through its record: rows are visible only once the record holds their key."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest

from lakehouse.catalog import Catalog, TableSpec
from lakehouse.query import query
from lakehouse.storage import Lakehouse

RUNS = TableSpec(
    name="test.runs",
    schema={"run_id": pl.String, "rows": pl.Int64},
    description="One row per completed write.",
    primary_key=("run_id",),
    append_only=True,
)
ROWS = TableSpec(
    name="test.rows",
    schema={"row_id": pl.Int64, "run_id": pl.String, "day": pl.Date},
    description="Rows of writes, visible once recorded.",
    partition_by=("day",),
    primary_key=("row_id", "day"),
    append_only=True,
    recorded_by=("test.runs", "run_id"),
)
DAY = date(2025, 1, 1)


@pytest.fixture
def lake(tmp_path: Path) -> Lakehouse:
    return Lakehouse(tmp_path / "lake", catalog=Catalog([RUNS, ROWS]))


def _rows(run: str, ids: list[int]) -> pl.DataFrame:
    return pl.DataFrame({"row_id": ids, "run_id": [run] * len(ids), "day": [DAY] * len(ids)})


def test_rows_appear_with_their_record_only(lake: Lakehouse) -> None:
    lake.append("test.rows", _rows("a", [1, 2]))
    assert lake.read("test.rows").is_empty()  # no record table at all yet
    lake.append("test.runs", pl.DataFrame({"run_id": ["a"], "rows": [2]}))
    lake.append("test.rows", _rows("b", [3]))  # a write that never records itself
    assert sorted(lake.read("test.rows")["row_id"]) == [1, 2]
    assert sorted(lake.read("test.rows", unrecorded=True)["row_id"]) == [1, 2, 3]
    filtered = lake.read("test.rows", where=pl.col("day") == DAY, columns=["row_id"])
    assert sorted(filtered["row_id"]) == [1, 2]


def test_time_travel_reads_the_record_of_that_instant(lake: Lakehouse) -> None:
    lake.append("test.rows", _rows("a", [1]))
    time.sleep(1.1)
    before_record = datetime.now(UTC)
    time.sleep(1.1)
    lake.append("test.runs", pl.DataFrame({"run_id": ["a"], "rows": [1]}))
    assert lake.read("test.rows", as_of=before_record).is_empty()
    assert lake.read("test.rows", version=0)["row_id"].to_list() == [1]  # the latest record


def test_query_sees_recorded_rows_only(lake: Lakehouse) -> None:
    lake.append("test.runs", pl.DataFrame({"run_id": ["a"], "rows": [2]}))
    lake.append("test.rows", _rows("a", [1, 2]))
    lake.append("test.rows", _rows("orphan", [3, 4, 5]))
    counted = query(lake, "SELECT count(*) AS n, max(row_id) AS top FROM test.rows")
    assert counted.to_pylist() == [{"n": 2, "top": 2}]


def test_a_record_key_must_be_a_column() -> None:
    with pytest.raises(ValueError, match=r"\['missing'\] are not in the schema"):
        TableSpec(
            name="test.bad",
            schema={"row_id": pl.Int64},
            description="x",
            recorded_by=("test.runs", "missing"),
        )
