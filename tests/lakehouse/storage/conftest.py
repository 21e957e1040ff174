from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest

from lakehouse.catalog import Catalog, TableSpec
from lakehouse.storage import Lakehouse

EVENTS = TableSpec(
    name="test.events",
    schema={
        "event_id": pl.Int64,
        "customer_id": pl.String,
        "amount": pl.Float64,
        "updated_at": pl.Datetime("us", "UTC"),
        "day": pl.Date,
    },
    description="Events for storage tests.",
    partition_by=("day",),
    primary_key=("event_id", "day"),
    version_column="updated_at",
)
LOG = TableSpec(
    name="test.audit_log",
    schema={"id": pl.Int64, "message": pl.String},
    description="Append-only audit log.",
    append_only=True,
    retention_days=30,
)


def events(ids: list[int], day: date, amount: float = 1.0, hour: int = 0) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "event_id": ids,
            "customer_id": [f"C{i % 3}" for i in ids],
            "amount": [amount] * len(ids),
            "updated_at": [datetime(2025, 1, 1, hour, tzinfo=UTC)] * len(ids),
            "day": [day] * len(ids),
        },
        schema=EVENTS.polars_schema,
    )


@pytest.fixture
def lake(tmp_path: Path) -> Lakehouse:
    return Lakehouse(tmp_path / "lake", catalog=Catalog([EVENTS, LOG]))
