"""The scorehouse CLI over a real (small) lakehouse in a temporary SCOREHOUSE_HOME."""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl
import pytest

from lakehouse.ingest.tables import AUDIT_COLUMNS
from lakehouse.sources.saas.contract import SAAS_FEEDS
from lakehouse.storage import Lakehouse
from models.usecase import project_lakehouse
from orchestration.cli import main

DAY = date(2025, 1, 1)


def _bronze_usage(n: int, day: date = DAY) -> pl.DataFrame:
    schema = {**SAAS_FEEDS["usage"].columns, **AUDIT_COLUMNS}
    return pl.DataFrame(
        {
            "customer_id": [f"C{i}" for i in range(n)],
            "usage_date": [day] * n,
            "active_users": [1] * n,
            "sessions": [2] * n,
            "events": [3] * n,
            "minutes": [4.0] * n,
            "features_used": [1] * n,
            "_source_file": ["usage/x.parquet"] * n,
            "_batch_id": ["b"] * n,
            "_ingested_at": [datetime(2025, 1, 2, tzinfo=UTC)] * n,
            "_batch_date": [day] * n,
        },
        schema=schema,
    )


@pytest.fixture
def lake() -> Lakehouse:
    lake = project_lakehouse()
    lake.replace("bronze.usage", _bronze_usage(3), partition={"_batch_date": DAY})
    lake.replace("bronze.usage", _bronze_usage(5), partition={"_batch_date": DAY})
    return lake


def test_tables_lists_versions_and_rows(lake: Lakehouse, capsys: pytest.CaptureFixture) -> None:
    assert main(["tables"]) == 0
    out = capsys.readouterr().out
    line = next(row for row in out.splitlines() if "bronze.usage" in row)
    cells = [cell.strip() for cell in line.strip("│ ").split("┆")]
    assert cells[:3] == ["bronze.usage", "1", "5"]
    assert cells[4].endswith("replace")
    assert "(not written)" in out


def test_history_shows_commit_metadata(lake: Lakehouse, capsys: pytest.CaptureFixture) -> None:
    assert main(["history", "bronze.usage"]) == 0
    out = capsys.readouterr().out
    assert out.count("replace") == 2


def test_query_latest_and_at_a_version(lake: Lakehouse, capsys: pytest.CaptureFixture) -> None:
    sql = "SELECT count(*) AS n FROM bronze.usage"
    assert main(["query", sql, "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines() == ["n", "5"]
    assert main(["query", sql, "--version", "0", "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines() == ["n", "3"]


def test_query_errors_are_reported_not_raised(
    lake: Lakehouse, capsys: pytest.CaptureFixture
) -> None:
    assert main(["query", "SELECT 1"]) == 1
    assert "names no lakehouse table" in capsys.readouterr().err
    assert main(["query", "SELECT * FROM bronze.usage", "--version", "9"]) == 1
    assert "bronze.usage: version 9" in capsys.readouterr().err


def test_vacuum_is_a_dry_run_and_guarded(lake: Lakehouse, capsys: pytest.CaptureFixture) -> None:
    assert main(["vacuum", "bronze.usage"]) == 0
    assert "would delete 0 files" in capsys.readouterr().out
    assert main(["vacuum", "bronze.usage", "--retention-hours", "1", "--apply"]) == 1
    assert "refused" in capsys.readouterr().err
