"""Bronze → silver: deduplicate a batch of landed rows into the silver table's shape.

Each silver table is fed by one bronze table. A batch (one or more landing days) is reduced to
one row per silver primary key, the latest by the source's timestamp (ties: the later landing
day, then the later row in the file), so a merge of the batch is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from lakehouse.catalog import TableSpec
from lakehouse.landing import LANDING_SOURCES
from lakehouse.tables import (
    SILVER_CUSTOMER_HISTORY,
    SILVER_CUSTOMERS,
    SILVER_INVOICES,
    SILVER_PAYMENTS,
    SILVER_SUBSCRIPTION_EVENTS,
    SILVER_TICKETS,
    SILVER_USAGE_DAILY,
)


@dataclass(frozen=True)
class SilverFlow:
    """How one silver table is derived from one landing source's bronze table."""

    silver: TableSpec
    source: str
    derived: dict[str, pl.Expr] = field(default_factory=dict)

    @property
    def bronze(self) -> str:
        return f"bronze.{self.source}"

    def transform(self, bronze_rows: pl.DataFrame) -> pl.DataFrame:
        """One row per silver key (the latest), with derived columns, in the silver schema."""
        order = LANDING_SOURCES[self.source].timestamp_column
        rows = bronze_rows.with_row_index("_row").with_columns(
            (expr.alias(name) for name, expr in self.derived.items())
        )
        latest = rows.sort([order, "_batch_date", "_row"]).unique(
            subset=list(self.silver.primary_key), keep="last", maintain_order=True
        )
        return latest.select(list(self.silver.schema)).sort(list(self.silver.primary_key))


SILVER_FLOWS: dict[str, SilverFlow] = {
    flow.silver.name: flow
    for flow in (
        SilverFlow(SILVER_CUSTOMERS, "customers"),
        SilverFlow(SILVER_CUSTOMER_HISTORY, "customers"),
        SilverFlow(
            SILVER_SUBSCRIPTION_EVENTS,
            "subscription_events",
            {"event_date": pl.col("event_at").dt.date()},
        ),
        SilverFlow(SILVER_USAGE_DAILY, "usage"),
        SilverFlow(SILVER_INVOICES, "invoices"),
        SilverFlow(SILVER_PAYMENTS, "payments"),
        SilverFlow(SILVER_TICKETS, "tickets"),
    )
}
