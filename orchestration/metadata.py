"""Materialization metadata every table-writing asset reports in the Dagster UI."""

from __future__ import annotations

from typing import Any

from dagster import AssetKey, MetadataValue, TableColumn, TableSchema

from lakehouse.storage import Lakehouse
from models.markdown import markdown_table


def table_key(table: str) -> AssetKey:
    """The asset key of a table-writing asset: the table name split on its dot."""
    return AssetKey(table.split("."))


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
