"""The SaaS source system's silver tables: current customer profiles and their history,
subscription events, daily usage, invoices, payments and tickets, each fed by one bronze table.
"""

from __future__ import annotations

import polars as pl

from lakehouse.catalog import TableSpec
from lakehouse.ingest.tables import LINEAGE, SilverFlow, SourceTables
from lakehouse.sources.saas.contract import SAAS_FEEDS

SILVER_CUSTOMERS = TableSpec(
    name="silver.customers",
    schema={**SAAS_FEEDS["customers"].columns, **LINEAGE},
    description="Current profile of every customer (latest version by updated_at).",
    primary_key=("customer_id",),
    version_column="updated_at",
)
SILVER_CUSTOMER_HISTORY = TableSpec(
    name="silver.customer_history",
    schema={**SAAS_FEEDS["customers"].columns, **LINEAGE},
    description="Every version of every customer profile, for as-of (point-in-time) lookups.",
    primary_key=("customer_id", "updated_at"),
)
SILVER_SUBSCRIPTION_EVENTS = TableSpec(
    name="silver.subscription_events",
    schema={**SAAS_FEEDS["subscription_events"].columns, "event_date": pl.Date(), **LINEAGE},
    description="Subscription lifecycle events (signup, plan/seat/price change, cancel).",
    partition_by=("event_date",),
    primary_key=("event_id", "event_date"),
)
SILVER_USAGE_DAILY = TableSpec(
    name="silver.usage_daily",
    schema={**SAAS_FEEDS["usage"].columns, **LINEAGE},
    description="Product usage per customer per day (a missing row means no usage).",
    partition_by=("usage_date",),
    primary_key=("customer_id", "usage_date"),
)
SILVER_INVOICES = TableSpec(
    name="silver.invoices",
    schema={**SAAS_FEEDS["invoices"].columns, **LINEAGE},
    description="Monthly invoices, net of discount.",
    primary_key=("invoice_id",),
    version_column="issued_at",
)
SILVER_PAYMENTS = TableSpec(
    name="silver.payments",
    schema={**SAAS_FEEDS["payments"].columns, **LINEAGE},
    description="Payment attempts (failures are retried by dunning).",
    primary_key=("payment_id",),
    version_column="attempted_at",
)
SILVER_TICKETS = TableSpec(
    name="silver.tickets",
    schema={**SAAS_FEEDS["tickets"].columns, **LINEAGE},
    description="Support tickets, current state (resolved rows replace open ones).",
    primary_key=("ticket_id",),
    version_column="updated_at",
)


def _flow(silver: TableSpec, feed: str, **derived: pl.Expr) -> SilverFlow:
    return SilverFlow(silver, SAAS_FEEDS[feed], derived)


SAAS = SourceTables(
    "saas",
    SAAS_FEEDS,
    {
        flow.silver.name: flow
        for flow in (
            _flow(SILVER_CUSTOMERS, "customers"),
            _flow(SILVER_CUSTOMER_HISTORY, "customers"),
            _flow(
                SILVER_SUBSCRIPTION_EVENTS,
                "subscription_events",
                event_date=pl.col("event_at").dt.date(),
            ),
            _flow(SILVER_USAGE_DAILY, "usage"),
            _flow(SILVER_INVOICES, "invoices"),
            _flow(SILVER_PAYMENTS, "payments"),
            _flow(SILVER_TICKETS, "tickets"),
        )
    },
)
"""The SaaS source: six feeds, seven silver tables."""
