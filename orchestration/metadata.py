"""Materialization metadata every table-writing asset reports in the Dagster UI."""

from __future__ import annotations

from typing import Any

import polars as pl
from dagster import MetadataValue, TableColumn, TableSchema

from lakehouse.storage import Lakehouse


def table_metadata(lake: Lakehouse, table: str, *, preview_rows: int = 5) -> dict[str, Any]:
    """Row count, schema, Delta version, last commit and a small preview of ``table``."""
    spec = lake.catalog[table]
    version = lake.version(table)
    rows = lake.row_count(table) if version is not None else 0
    last = lake.history(table, limit=1)[0] if version is not None else {}
    preview = lake.scan(table).head(preview_rows).collect() if version is not None else None
    return {
        "dagster/row_count": rows,
        "dagster/column_schema": TableSchema(
            columns=[TableColumn(name, str(dtype)) for name, dtype in spec.schema.items()]
        ),
        "dagster/uri": MetadataValue.path(lake.table_uri(table)),
        "delta_version": version if version is not None else -1,
        "last_operation": str(last.get("scorehouse.operation", last.get("operation", ""))),
        "preview": MetadataValue.md(markdown_table(preview) if preview is not None else "(empty)"),
    }


def markdown_table(frame: pl.DataFrame) -> str:
    """A small frame as a markdown table (Dagster renders it in the UI)."""
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    rows = [
        "| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in frame.rows()
    ]
    return "\n".join([header, rule, *rows])
