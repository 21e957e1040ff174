from datetime import date

import polars as pl
import pytest
from deltalake import DeltaTable

from lakehouse.commit import CommitInfo
from lakehouse.storage import Lakehouse

from .conftest import events

D1, D2 = date(2025, 1, 1), date(2025, 1, 2)


def test_first_write_creates_table_with_catalog_properties(lake: Lakehouse) -> None:
    assert not lake.exists("test.events")
    result = lake.append("test.events", events([1, 2, 3], D1))
    assert (result.version, result.rows) == (0, 3)
    dt = DeltaTable(lake.table_uri("test.events"))
    assert dt.metadata().name == "test.events"
    assert dt.metadata().partition_columns == ["day"]
    config = dt.metadata().configuration
    assert config["delta.deletedFileRetentionDuration"] == "interval 2555 days"


def test_append_adds_rows_readable_by_deltalake_and_polars(lake: Lakehouse) -> None:
    lake.append("test.events", events([1, 2], D1))
    lake.append("test.events", events([3], D2))
    expected = pl.concat([events([1, 2], D1), events([3], D2)])
    via_polars = lake.read("test.events").sort("event_id")
    via_deltalake = pl.from_arrow(DeltaTable(lake.table_uri("test.events")).to_pyarrow_table())
    assert via_polars.equals(expected)
    assert via_deltalake.select(expected.columns).sort("event_id").equals(expected)
    assert lake.row_count("test.events") == 3


def test_file_statistics_allow_skipping_without_losing_rows(lake: Lakehouse) -> None:
    lake.append("test.events", events([1, 2], D1, amount=5.0))
    lake.append("test.events", events([10, 11], D2, amount=7.0))
    stats = pl.DataFrame(DeltaTable(lake.table_uri("test.events")).get_add_actions(flatten=True))
    assert sorted(stats["min.event_id"]) == [1, 10]
    assert sorted(stats["max.event_id"]) == [2, 11]
    assert lake.read("test.events", where=pl.col("event_id") > 5)["event_id"].sort().to_list() == [
        10,
        11,
    ]


def test_commit_metadata_is_in_history(lake: Lakehouse) -> None:
    commit = CommitInfo(run_id="run-123", asset_key="bronze/usage", partition="2025-01-01")
    lake.append("test.events", events([1], D1), commit=commit)
    latest = lake.history("test.events")[0]
    assert latest["scorehouse.operation"] == "append"
    assert latest["scorehouse.rows"] == 1
    assert latest["dagster.run_id"] == "run-123"
    assert latest["dagster.asset_key"] == "bronze/usage"
    assert latest["dagster.partition"] == "2025-01-01"
    assert latest["scorehouse.code_version"]


def test_empty_append_creates_an_empty_table(lake: Lakehouse) -> None:
    lake.append("test.events", events([], D1))
    assert lake.read("test.events").is_empty()
    assert lake.read("test.events").schema == events([], D1).schema


def test_append_batches_is_one_commit(lake: Lakehouse) -> None:
    frames = (events([i, i + 100], D1 if i % 2 else D2) for i in range(5))
    result = lake.append_batches("test.events", frames)
    assert (result.version, result.rows) == (0, 10)
    assert lake.read("test.events").height == 10
    assert len(lake.history("test.events")) == 1


def test_a_failing_stream_commits_nothing(lake: Lakehouse) -> None:
    lake.append("test.events", events([1], D1))

    def frames():
        yield events([2], D1)
        raise RuntimeError("scoring failed half-way")

    with pytest.raises(RuntimeError, match="half-way"):
        lake.append_batches("test.events", frames())
    assert lake.version("test.events") == 0
    assert lake.read("test.events")["event_id"].to_list() == [1]
