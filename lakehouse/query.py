"""SQL over the lakehouse with DuckDB reading Delta snapshots through Arrow (no extensions).

Tables are referenced as ``layer.name`` in the SQL. Only the tables a query names are opened,
each at the requested version or timestamp, as a lazily scanned Arrow dataset, so DuckDB pushes
projections and filters down and never loads a table whole.
"""

from __future__ import annotations

import re
from datetime import datetime

import duckdb
import pyarrow as pa

from lakehouse.storage import Lakehouse


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
    tables = referenced_tables(lake, sql)
    if not tables:
        raise ValueError(
            "the query names no lakehouse table (use layer.name, e.g. silver.customers)"
        )
    if version is not None and len(tables) > 1:
        raise ValueError(f"--version applies to one table; the query names {tables} (use --as-of)")
    con = duckdb.connect()
    try:
        return _run(lake, con, sql, tables, version, as_of)
    finally:
        con.close()  # release DuckDB's scan threads before the Arrow datasets go away


def _run(
    lake: Lakehouse,
    con: duckdb.DuckDBPyConnection,
    sql: str,
    tables: list[str],
    version: int | None,
    as_of: datetime | None,
) -> pa.Table:
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
        con.execute(f'CREATE OR REPLACE VIEW "{layer}"."{table}" AS SELECT * FROM "{view}"')
    return con.sql(sql).to_arrow_table()
