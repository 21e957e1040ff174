"""``labels.churn``: did a customer cancel within 30 days of an as-of date? Matured labels only.

For as-of date ``A`` the population is every customer subscribed at the start of ``A`` (signed
up before ``A``, not cancelled before ``A``); the label is 1 when their cancellation falls in
``[A, A + 29]``. The label of ``A`` is only written once day ``A + 29`` has landed (it has
matured), so the daily partition ``P`` writes the labels of ``A = P − 29``. The entity timestamp
is midnight UTC at the start of ``A``: a point-in-time join then sees features up to ``A − 1``.
"""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from lakehouse.catalog import TableSpec
from lakehouse.landing import TIMESTAMP
from lakehouse.storage import Lakehouse

HORIZON_DAYS = 30

LABELS_CHURN = TableSpec(
    name="labels.churn",
    schema={
        "customer_id": pl.String(),
        "as_of_date": pl.Date(),
        "event_timestamp": TIMESTAMP,
        "churned_30d": pl.Int64(),
        "cancel_date": pl.Date(),
        "matured_on": pl.Date(),
    },
    description="Matured 30-day churn outcome per customer and as-of date.",
    partition_by=("as_of_date",),
    primary_key=("customer_id", "as_of_date"),
)


def as_of_for(matured_on: date) -> date:
    """The as-of date whose labels mature on ``matured_on`` (its 30-day window ends there)."""
    return matured_on - timedelta(days=HORIZON_DAYS - 1)


def build_labels(lake: Lakehouse, as_of: list[date]) -> pl.DataFrame:
    """Labels of the ``as_of`` dates (each must have matured), sorted by date and customer id."""
    last = max(as_of) + timedelta(days=HORIZON_DAYS - 1)
    cancels = (
        lake.scan("silver.subscription_events")
        .filter((pl.col("event_type") == "cancel") & (pl.col("event_date") <= last))
        .group_by("customer_id")
        .agg(pl.col("event_date").min().alias("cancel_date"))
    )
    customers = (
        lake.scan("silver.customers")
        .select("customer_id", "signup_date")
        .join(cancels, on="customer_id", how="left")
        .collect()
    )
    dates = pl.DataFrame({"as_of_date": as_of}, schema={"as_of_date": pl.Date()})
    window_end = pl.col("as_of_date") + pl.duration(days=HORIZON_DAYS - 1)
    return (
        customers.join(dates, how="cross")
        .filter(
            (pl.col("signup_date") < pl.col("as_of_date"))
            & (pl.col("cancel_date").is_null() | (pl.col("cancel_date") >= pl.col("as_of_date")))
        )
        .with_columns(
            pl.col("as_of_date").cast(TIMESTAMP).alias("event_timestamp"),
            (pl.col("cancel_date") <= window_end)
            .fill_null(False)
            .cast(pl.Int64)
            .alias("churned_30d"),
            pl.when(pl.col("cancel_date") <= window_end)
            .then(pl.col("cancel_date"))
            .alias("cancel_date"),
            window_end.alias("matured_on"),
        )
        .select(list(LABELS_CHURN.schema))
        .sort("as_of_date", "customer_id")
    )
