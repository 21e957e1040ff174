"""``lakehouse.query`` runs read-only SQL: normal queries, joins and time travel work; writing
files, reading files or URLs, attaching databases, extensions and settings are all refused."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl
import pytest

from lakehouse.catalog import Catalog, TableSpec
from lakehouse.query import QueryError, QueryRefusedError, lock_down, query
from lakehouse.storage import Lakehouse
from orchestration.cli import main

CUSTOMERS = TableSpec(
    name="silver.customers",
    schema={"customer_id": pl.String, "plan": pl.String},
    description="Customers for query tests.",
    primary_key=("customer_id",),
)
INVOICES = TableSpec(
    name="silver.invoices",
    schema={"invoice_id": pl.String, "customer_id": pl.String, "amount": pl.Float64},
    description="Invoices for query tests.",
    primary_key=("invoice_id",),
)


@pytest.fixture
def lake(tmp_path: Path) -> Lakehouse:
    lake = Lakehouse(tmp_path / "lake", catalog=Catalog([CUSTOMERS, INVOICES]))
    lake.append("silver.customers", pl.DataFrame({"customer_id": ["C1"], "plan": ["starter"]}))
    lake.append(
        "silver.invoices",
        pl.DataFrame(
            {"invoice_id": ["I1", "I2"], "customer_id": ["C1", "C2"], "amount": [1.5, 2.0]}
        ),
    )
    return lake


def _sql(lake: Lakehouse, sql: str, **at: object) -> list[tuple]:
    frame = pl.from_arrow(query(lake, sql, **at))  # type: ignore[arg-type]
    assert isinstance(frame, pl.DataFrame)
    return frame.rows()


def test_queries_joins_and_time_travel_still_work(lake: Lakehouse) -> None:
    assert _sql(lake, "SELECT count(*) FROM silver.invoices") == [(2,)]
    joined = """
        SELECT c.plan, sum(i.amount) AS total
        FROM silver.invoices i JOIN silver.customers c USING (customer_id) GROUP BY c.plan
    """
    assert _sql(lake, joined) == [("starter", 1.5)]
    time.sleep(0.01)
    between = datetime.now(UTC)
    time.sleep(0.01)
    lake.append("silver.customers", pl.DataFrame({"customer_id": ["C2"], "plan": ["growth"]}))
    assert _sql(lake, "SELECT count(*) FROM silver.customers") == [(2,)]
    assert _sql(lake, "SELECT count(*) FROM silver.customers", version=0) == [(1,)]
    assert sorted(_sql(lake, joined, as_of=between)) == [("starter", 1.5)]
    assert sorted(_sql(lake, joined)) == [("growth", 2.0), ("starter", 1.5)]


def _refused(lake: Lakehouse, sql: str) -> str:
    with pytest.raises(QueryRefusedError) as info:
        query(lake, sql)
    message = str(info.value)
    assert message.startswith("read-only query:")
    return message


@pytest.mark.parametrize(
    ("statement", "kind"),
    [
        ("COPY (SELECT * FROM silver.customers) TO '{out}'", "COPY"),
        ("COPY silver.invoices TO '{out}' (FORMAT parquet)", "COPY"),
        ("EXPORT DATABASE '{out}'", "EXPORT"),
        ("ATTACH '{out}' AS other", "ATTACH"),
        ("INSTALL httpfs", "LOAD"),
        ("LOAD httpfs", "LOAD"),
        ("SET enable_external_access = true", "SET"),
        ("CREATE TABLE silver.copy AS SELECT * FROM silver.customers", "CREATE"),
        ("SELECT * FROM silver.customers; COPY silver.customers TO '{out}'", "COPY"),
    ],
)
def test_statements_other_than_a_query_are_refused(
    lake: Lakehouse, tmp_path: Path, statement: str, kind: str
) -> None:
    out = tmp_path / "out"
    message = _refused(lake, statement.format(out=out) + "; SELECT 1 FROM silver.customers")
    assert kind in message and "(rule: one query)" in message
    assert not out.exists()


@pytest.mark.parametrize(
    "statement",
    [
        "COPY (SELECT 42) TO '{out}'",
        "EXPORT DATABASE '{out}'",
        "ATTACH '{out}' AS other",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SELECT * FROM read_text('{out}')",
        "SET enable_external_access = true",
        "SET allowed_directories = ['/']",
        "RESET lock_configuration",
    ],
)
def test_a_locked_connection_refuses_files_extensions_and_settings(
    tmp_path: Path, statement: str
) -> None:
    # The second guard on its own: even a statement that got past the first one fails.
    out = tmp_path / "out"
    con = duckdb.connect()
    lock_down(con)
    with pytest.raises((duckdb.PermissionException, duckdb.InvalidInputException)):
        con.execute(statement.format(out=out))
    assert not out.exists()
    con.close()


@pytest.mark.parametrize(
    "function", ["read_csv", "read_csv_auto", "read_text", "read_blob", "read_json", "glob"]
)
def test_local_files_cannot_be_read(lake: Lakehouse, tmp_path: Path, function: str) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_text("a,b\n1,2\n")
    message = _refused(lake, f"SELECT * FROM {function}('{secret}'), silver.customers")
    assert "file system operations are disabled" in message


def test_the_tables_own_files_cannot_be_read_directly(lake: Lakehouse) -> None:
    files = lake.delta_table("silver.customers").file_uris()
    path = files[0].removeprefix("file://")
    _refused(
        lake, f"SELECT * FROM read_parquet('{path}') JOIN silver.customers USING (customer_id)"
    )
    _refused(lake, f"SELECT * FROM '{path}', silver.customers")


def test_network_access_is_refused(lake: Lakehouse) -> None:
    _refused(lake, "SELECT * FROM read_csv('https://example.com/x.csv'), silver.customers")
    _refused(lake, "SELECT * FROM read_parquet('s3://bucket/x.parquet'), silver.customers")


def test_settings_cannot_be_read_back_open_inside_a_query(lake: Lakehouse) -> None:
    settings = _sql(
        lake,
        "SELECT name, value FROM duckdb_settings() CROSS JOIN (SELECT 1 FROM silver.customers) "
        "WHERE name IN ('enable_external_access', 'lock_configuration') ORDER BY name",
    )
    assert settings == [("enable_external_access", "false"), ("lock_configuration", "true")]


def test_bad_sql_is_a_clear_error(lake: Lakehouse) -> None:
    with pytest.raises(QueryError, match="query failed: Parser Error"):
        query(lake, "SELEC * FROM silver.customers")
    with pytest.raises(QueryError, match="query failed: Binder Error"):
        query(lake, "SELECT nope FROM silver.customers")


def test_cli_reports_refusals(
    lake: Lakehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setattr("orchestration.cli.load_use_cases", lambda: _UseCases(lake))
    out = tmp_path / "out.csv"
    sql = f"COPY (SELECT * FROM silver.customers) TO '{out}'"
    assert main(["query", sql]) == 1
    assert "scorehouse: error: read-only query:" in capsys.readouterr().err
    assert not out.exists()
    assert main(["query", "SELECT plan FROM silver.customers", "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines() == ["plan", "starter"]
    # A list cell (verdict reasons, reason codes) is written as its JSON, not refused.
    sql = "SELECT plan, [plan, 'x'] AS tags FROM silver.customers"
    assert main(["query", sql, "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines() == ["plan,tags", 'starter,"[""starter"", ""x""]"']


class _UseCases:
    def __init__(self, lake: Lakehouse) -> None:
        self._lake = lake

    def lakehouse(self) -> Lakehouse:
        return self._lake
