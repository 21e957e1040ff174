"""The project's tables. ``CATALOG`` is what ``Lakehouse()`` writes and reads by default.

* ``bronze.<source>``: one table per landing source, the contract's columns as landed plus
  lineage (``_source_file``, ``_batch_id``, ``_ingested_at``), partitioned by ``_batch_date``
  (the landing day), so re-ingesting a day replaces exactly that day.
* ``silver.*``: typed, deduplicated, merged current state (entities) or facts (events, usage).
"""

from __future__ import annotations

import polars as pl

from lakehouse.catalog import Catalog, TableSpec
from lakehouse.ingest import AUDIT_COLUMNS
from lakehouse.landing import LANDING_SOURCES, TIMESTAMP, LandingSource


def bronze_spec(source: LandingSource) -> TableSpec:
    """The bronze table of a landing source: its contract columns plus lineage columns."""
    return TableSpec(
        name=f"bronze.{source.name}",
        schema={**source.columns, **AUDIT_COLUMNS},
        description=f"Landed {source.name} files as delivered, with lineage. {source.description}",
        partition_by=("_batch_date",),
        primary_key=(*source.key, "_batch_date"),
    )


BRONZE = {name: bronze_spec(source) for name, source in LANDING_SOURCES.items()}
_contract = {name: dict(source.columns) for name, source in LANDING_SOURCES.items()}
_lineage = {"_batch_id": pl.String()}

SILVER_CUSTOMERS = TableSpec(
    name="silver.customers",
    schema={**_contract["customers"], **_lineage},
    description="Current profile of every customer (latest version by updated_at).",
    primary_key=("customer_id",),
    version_column="updated_at",
)
SILVER_SUBSCRIPTION_EVENTS = TableSpec(
    name="silver.subscription_events",
    schema={**_contract["subscription_events"], "event_date": pl.Date(), **_lineage},
    description="Subscription lifecycle events (signup, plan/seat/price change, cancel).",
    partition_by=("event_date",),
    primary_key=("event_id", "event_date"),
)
SILVER_USAGE_DAILY = TableSpec(
    name="silver.usage_daily",
    schema={**_contract["usage"], **_lineage},
    description="Product usage per customer per day (a missing row means no usage).",
    partition_by=("usage_date",),
    primary_key=("customer_id", "usage_date"),
)
SILVER_INVOICES = TableSpec(
    name="silver.invoices",
    schema={**_contract["invoices"], **_lineage},
    description="Monthly invoices, net of discount.",
    primary_key=("invoice_id",),
    version_column="issued_at",
)
SILVER_PAYMENTS = TableSpec(
    name="silver.payments",
    schema={**_contract["payments"], **_lineage},
    description="Payment attempts (failures are retried by dunning).",
    primary_key=("payment_id",),
    version_column="attempted_at",
)
SILVER_TICKETS = TableSpec(
    name="silver.tickets",
    schema={**_contract["tickets"], **_lineage},
    description="Support tickets, current state (resolved rows replace open ones).",
    primary_key=("ticket_id",),
    version_column="updated_at",
)
SILVER = {
    spec.name: spec
    for spec in (
        SILVER_CUSTOMERS,
        SILVER_SUBSCRIPTION_EVENTS,
        SILVER_USAGE_DAILY,
        SILVER_INVOICES,
        SILVER_PAYMENTS,
        SILVER_TICKETS,
    )
}

CATALOG = Catalog([*BRONZE.values(), *SILVER.values()])

__all__ = ["BRONZE", "CATALOG", "SILVER", "TIMESTAMP", "bronze_spec"]
