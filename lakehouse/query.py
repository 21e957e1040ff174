"""SQL over the lakehouse with DuckDB reading Delta snapshots through Arrow (no extensions).

Tables are referenced as ``layer.name`` in the SQL. Only the tables a query names are opened,
each at the requested version or timestamp, as a lazily scanned Arrow dataset, so DuckDB pushes
projections and filters down and never loads a table whole.

Queries are read-only, by two independent guards; each refusal is a ``QueryRefusedError``
("read-only query: …"):

* the SQL must be one ``SELECT`` (``WITH``, ``VALUES``, ``DESCRIBE``, ``SHOW``, ``SUMMARIZE``
  included) or ``EXPLAIN`` statement: ``COPY``, ``EXPORT``, ``ATTACH``, ``INSTALL``, ``LOAD``,
  ``SET``, ``CREATE`` … are refused before anything runs;
* the snapshots are registered first, then the connection is locked down
  (``READ_ONLY_SETTINGS``: no external access, no extension install or autoload, no Python
  variable scans, configuration locked), so DuckDB itself refuses to touch any file or URL
  from inside a query: ``read_csv``/``read_parquet``/``read_text``/``glob``/``'file.parquet'``
  on local paths or URLs fail, and nothing can turn the settings back on.
"""

from __future__ import annotations

import re
from datetime import datetime

import duckdb
import pyarrow as pa

from lakehouse.errors import LakehouseError
from lakehouse.storage import Lakehouse

READ_ONLY_SETTINGS: tuple[tuple[str, str], ...] = (
    ("enable_external_access", "false"),  # no file system or network from SQL
    ("autoinstall_known_extensions", "false"),
    ("autoload_known_extensions", "false"),
    ("python_enable_replacements", "false"),  # no scans of Python variables by name
    ("lock_configuration", "true"),  # last: nothing above can be undone by the query
)
"""DuckDB settings applied after the snapshots are registered, in this order."""


class QueryRefusedError(LakehouseError):
    """The query tried to write, read files or URLs, load extensions or change settings."""


class QueryError(LakehouseError):
    """The query is not valid SQL over the named tables (DuckDB's message says why)."""


QUERY_STATEMENTS = ("SELECT", "EXPLAIN")
"""DuckDB statement types a query may be."""


def referenced_tables(lake: Lakehouse, sql: str) -> list[str]:
    """Catalog tables named in ``sql`` (as ``layer.name``), in catalog order."""
    return [
        spec.name
        for spec in lake.catalog
        if re.search(rf"(?<![\w.]){re.escape(spec.name)}(?![\w])", sql, flags=re.IGNORECASE)
    ]


def query(
    lake: Lakehouse, sql: str, *, version: int | None = None, as_of: datetime | None = None
) -> pa.Table:
    """Run ``sql`` over the tables it names; ``version``/``as_of`` time-travel every one of them.

    ``version`` is a table version, so it only makes sense for a query over one table;
    ``as_of`` gives a consistent snapshot of several tables at one instant.
    """
    _check_statement(sql)
    tables = referenced_tables(lake, sql)
    if not tables:
        raise ValueError(
            "the query names no lakehouse table (use layer.name, e.g. silver.customers)"
        )
    if version is not None and len(tables) > 1:
        raise ValueError(f"--version applies to one table; the query names {tables} (use --as-of)")
    con = duckdb.connect()
    try:
        _register(lake, con, tables, version, as_of)
        lock_down(con)
        return _execute(con, sql)
    finally:
        con.close()  # release DuckDB's scan threads before the Arrow datasets go away


def _register(
    lake: Lakehouse,
    con: duckdb.DuckDBPyConnection,
    tables: list[str],
    version: int | None,
    as_of: datetime | None,
) -> None:
    for name in tables:
        dt = lake.delta_table(name)
        if as_of is not None:
            lake.scan(name, as_of=as_of)  # validates that the snapshot is readable
            dt.load_as_version(as_of)
        elif version is not None:
            lake.scan(name, version=version)
            dt = lake.delta_table(name, version=version)
        layer, table = name.split(".")
        view = f"{layer}__{table}"
        con.register(view, dt.to_pyarrow_dataset())
        con.execute(f'CREATE SCHEMA IF NOT EXISTS "{layer}"')
        con.execute(
            f'CREATE OR REPLACE VIEW "{layer}"."{table}" AS SELECT * FROM "{view}"'
            + _recorded_filter(lake, con, name, as_of)
        )


def _recorded_filter(
    lake: Lakehouse, con: duckdb.DuckDBPyConnection, name: str, as_of: datetime | None
) -> str:
    """The WHERE clause hiding rows the table's record does not hold (``TableSpec.recorded_by``),
    with the record registered under a private name; empty for other tables."""
    recorded = lake.recorded_keys(name, as_of=as_of)
    if recorded is None:
        return ""
    frame = recorded.collect()
    key = frame.columns[0]
    keys = f"__recorded__{name.replace('.', '__')}"
    con.register(keys, frame.to_arrow())
    return f' WHERE "{key}" IN (SELECT "{key}" FROM "{keys}")'


def _check_statement(sql: str) -> None:
    """One SELECT or EXPLAIN statement, or ``QueryRefusedError`` (nothing has run yet)."""
    try:
        with duckdb.connect() as parser:
            statements = parser.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryError(f"query failed: {exc}") from exc
    kinds = [statement.type.name for statement in statements]
    if len(kinds) != 1 or kinds[0] not in QUERY_STATEMENTS:
        found = (
            f"a {kinds[0]} statement is"
            if len(kinds) == 1
            else f"{len(kinds)} statements {kinds} are"
        )
        raise QueryRefusedError(
            f"read-only query: {found} not run; only one "
            f"{' or '.join(QUERY_STATEMENTS)} statement is (rule: one query)"
        )


def lock_down(con: duckdb.DuckDBPyConnection) -> None:
    """Make ``con`` unable to reach files, URLs, extensions or settings from SQL
    (``READ_ONLY_SETTINGS``); a setting this DuckDB lacks raises (fail closed)."""
    for name, value in READ_ONLY_SETTINGS:
        con.execute(f"SET {name} = {value}")
    applied = dict(
        con.execute(
            "SELECT name, value FROM duckdb_settings() WHERE name IN "
            f"({', '.join('?' for _ in READ_ONLY_SETTINGS)})",
            [name for name, _ in READ_ONLY_SETTINGS],
        ).fetchall()
    )
    wrong = [name for name, value in READ_ONLY_SETTINGS if applied.get(name) != value]
    if wrong:
        raise QueryRefusedError(f"read-only query: DuckDB did not apply the settings {wrong}")


def _execute(con: duckdb.DuckDBPyConnection, sql: str) -> pa.Table:
    try:
        result = con.sql(sql)
        if result is None:
            raise QueryError(f"query failed: no result from {sql!r}")
        return result.to_arrow_table()
    except duckdb.PermissionException as exc:
        raise QueryRefusedError(
            f"read-only query: DuckDB may not read or write files, URLs or extensions ({exc})"
        ) from exc
    except duckdb.InvalidInputException as exc:
        if "configuration has been locked" in str(exc):
            raise QueryRefusedError(f"read-only query: settings are locked ({exc})") from exc
        raise QueryError(f"query failed: {exc}") from exc
    except duckdb.Error as exc:
        raise QueryError(f"query failed: {exc}") from exc
