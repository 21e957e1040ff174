"""The churn features of the SaaS source system: one row per subscribed customer per day.

The row for customer ``c`` on day ``d`` summarises only what was known by the end of day ``d``
(``lakehouse.features.views`` stamps it). Windows (7/30/90 days) are computed over a dense
customer × day grid: daily facts (usage, payment failures, invoices, tickets, plan/seat
changes) are summed per day, missing days are zero, and
rolling sums run per customer. A range of days is built in chunks, each reading only the silver
partitions it needs (the chunk plus 89 days of history), so memory grows with customers × (chunk
+ 90 days), not with the whole history.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, timedelta

import polars as pl

from lakehouse.catalog import TIMESTAMP
from lakehouse.features.views import safe_ratio
from lakehouse.ingest.saas import (
    SILVER_CUSTOMER_HISTORY,
    SILVER_CUSTOMERS,
    SILVER_INVOICES,
    SILVER_PAYMENTS,
    SILVER_SUBSCRIPTION_EVENTS,
    SILVER_TICKETS,
    SILVER_USAGE_DAILY,
)
from lakehouse.sources.saas.contract import CHANNELS, INDUSTRIES, PLANS, REGIONS
from lakehouse.storage import Lakehouse

HISTORY_DAYS = 90
WINDOWS = (7, 30, 90)

ACTIVITY_FEATURES: dict[str, pl.DataType] = {
    "active_users_7d_mean": pl.Float64(),
    "active_users_30d_mean": pl.Float64(),
    "active_users_90d_mean": pl.Float64(),
    "sessions_7d_sum": pl.Int64(),
    "sessions_30d_sum": pl.Int64(),
    "events_30d_sum": pl.Int64(),
    "minutes_7d_sum": pl.Float64(),
    "minutes_30d_sum": pl.Float64(),
    "features_used_30d_mean": pl.Float64(),
    "active_days_30d": pl.Int64(),
    "usage_trend_7d_30d": pl.Float64(),
    "usage_trend_30d_90d": pl.Float64(),
    "days_since_last_active": pl.Int64(),
}
BILLING_FEATURES: dict[str, pl.DataType] = {
    "mrr": pl.Float64(),
    "discount_pct": pl.Float64(),
    "failed_payments_30d": pl.Int64(),
    "failed_payments_90d": pl.Int64(),
    "payment_attempts_90d": pl.Int64(),
    "invoices_90d": pl.Int64(),
    "invoiced_amount_90d": pl.Float64(),
    "plan_changes_90d": pl.Int64(),
    "seat_changes_90d": pl.Int64(),
}
SUPPORT_FEATURES: dict[str, pl.DataType] = {
    "tickets_30d": pl.Int64(),
    "tickets_90d": pl.Int64(),
    "high_severity_tickets_30d": pl.Int64(),
    "tickets_resolved_90d": pl.Int64(),
    "resolution_hours_90d_mean": pl.Float64(),
    "last_csat_90d": pl.Float64(),
}
ACCOUNT_FEATURES: dict[str, pl.DataType] = {
    "tenure_days": pl.Int64(),
    "plan": pl.String(),
    "seats": pl.Int64(),
    "price_per_seat": pl.Float64(),
    "region": pl.String(),
    "industry": pl.String(),
    "acquisition_channel": pl.String(),
}


CHURN_FEATURES: dict[str, pl.DataType] = {
    **ACTIVITY_FEATURES,
    **BILLING_FEATURES,
    **SUPPORT_FEATURES,
    **ACCOUNT_FEATURES,
}
"""Everything the builder computes, by name and type (use-case specs group them into views)."""


class SaasChurnFeatures:
    """Feature builder ``saas_churn``: usage, billing, support and account windows per day."""

    def outputs(self) -> Mapping[str, pl.DataType]:
        return CHURN_FEATURES

    def vocabularies(self) -> Mapping[str, tuple[str, ...]]:
        return {
            "plan": PLANS,
            "region": REGIONS,
            "industry": INDUSTRIES,
            "acquisition_channel": CHANNELS,
        }

    def build(self, lake: Lakehouse, days: Sequence[date]) -> pl.DataFrame:
        """Rows for every customer subscribed on each of ``days`` (one chunk: keep it short)."""
        first, last = min(days), max(days)
        since = first - timedelta(days=HISTORY_DAYS - 1)
        customers = _active_spans(lake, last)
        grid = _daily_grid(customers, since, last)
        daily = grid.join(_daily_facts(lake, since, last), on=["customer_id", "day"], how="left")
        daily = daily.with_columns(
            pl.exclude("customer_id", "day", "signup_date", "csat").fill_null(0)
        )
        windows = _windows(daily).filter(pl.col("day").is_in(list(days)))
        return (
            windows.join(_profile_as_of(lake, last, windows), on=["customer_id", "day"], how="left")
            .join(
                customers.select("customer_id", "region", "industry", "acquisition_channel"),
                on="customer_id",
                how="left",
            )
            .select("customer_id", "day", *CHURN_FEATURES)
        )


def _active_spans(lake: Lakehouse, last: date) -> pl.DataFrame:
    """Customers signed up by ``last`` with their cancel date (null: still subscribed)."""
    cancels = (
        lake.scan(SILVER_SUBSCRIPTION_EVENTS.name)
        .filter((pl.col("event_type") == "cancel") & (pl.col("event_date") <= last))
        .group_by("customer_id")
        .agg(pl.col("event_date").min().alias("cancel_date"))
    )
    return (
        lake.scan(SILVER_CUSTOMERS.name)
        .filter(pl.col("signup_date") <= last)
        .select("customer_id", "signup_date", "region", "industry", "acquisition_channel")
        .join(cancels, on="customer_id", how="left")
        .collect()
    )


def _daily_grid(customers: pl.DataFrame, since: date, last: date) -> pl.DataFrame:
    """One row per customer per day from ``max(since, signup)`` while subscribed."""
    return (
        customers.lazy()
        .with_columns(
            pl.max_horizontal(pl.col("signup_date"), pl.lit(since)).alias("start"),
            pl.min_horizontal(pl.col("cancel_date") - pl.duration(days=1), pl.lit(last))
            .fill_null(pl.lit(last))
            .alias("end"),
        )
        .filter(pl.col("start") <= pl.col("end"))
        .with_columns(pl.date_ranges("start", "end").alias("day"))
        .explode("day")
        .select("customer_id", "day", "signup_date")
        .collect()
    )


def _daily_facts(lake: Lakehouse, since: date, last: date) -> pl.DataFrame:
    """Per customer per day: usage, payment, invoice, ticket and subscription-change counts."""
    in_range = pl.col("day").is_between(since, last)
    usage = lake.scan(SILVER_USAGE_DAILY.name).filter(pl.col("usage_date").is_between(since, last))
    usage = usage.select(
        "customer_id",
        pl.col("usage_date").alias("day"),
        "active_users",
        "sessions",
        "events",
        "minutes",
        "features_used",
        (pl.col("active_users") > 0).cast(pl.Int64).alias("active_day"),
    )
    payments = (
        lake.scan(SILVER_PAYMENTS.name)
        .with_columns(pl.col("attempted_at").dt.date().alias("day"))
        .filter(in_range)
        .group_by("customer_id", "day")
        .agg(
            pl.len().cast(pl.Int64).alias("payment_attempts"),
            (pl.col("status") == "failed").sum().cast(pl.Int64).alias("failed_payments"),
        )
    )
    invoices = (
        lake.scan(SILVER_INVOICES.name)
        .with_columns(pl.col("issued_at").dt.date().alias("day"))
        .filter(in_range)
        .group_by("customer_id", "day")
        .agg(pl.len().cast(pl.Int64).alias("invoices"), pl.col("amount").sum().alias("invoiced"))
    )
    tickets = lake.scan(SILVER_TICKETS.name)
    opened = (
        tickets.with_columns(pl.col("opened_at").dt.date().alias("day"))
        .filter(in_range)
        .group_by("customer_id", "day")
        .agg(
            pl.len().cast(pl.Int64).alias("tickets"),
            pl.col("severity").is_in(["high", "urgent"]).sum().cast(pl.Int64).alias("high_tickets"),
        )
    )
    # Resolution facts count on the day of resolution: before it they were unknown.
    resolved = (
        tickets.filter(pl.col("resolved_at").is_not_null())
        .with_columns(pl.col("resolved_at").dt.date().alias("day"))
        .filter(in_range)
        .sort("resolved_at")
        .group_by("customer_id", "day")
        .agg(
            pl.len().cast(pl.Int64).alias("tickets_resolved"),
            pl.col("resolution_hours").sum().alias("resolution_hours"),
            pl.col("csat").drop_nulls().last().cast(pl.Float64).alias("csat"),
        )
    )
    changes = (
        lake.scan(SILVER_SUBSCRIPTION_EVENTS.name)
        .filter(pl.col("event_date").is_between(since, last))
        .group_by("customer_id", pl.col("event_date").alias("day"))
        .agg(
            (pl.col("event_type") == "plan_change").sum().cast(pl.Int64).alias("plan_changes"),
            (pl.col("event_type") == "seat_change").sum().cast(pl.Int64).alias("seat_changes"),
        )
    )
    facts = usage
    for other in (payments, invoices, opened, resolved, changes):
        facts = facts.join(other, on=["customer_id", "day"], how="full", coalesce=True)
    return facts.collect()


def _windows(daily: pl.DataFrame) -> pl.DataFrame:
    """Rolling 7/30/90-day sums per customer over the dense daily grid."""
    daily = daily.sort("customer_id", "day")

    def rolling(column: str, days: int) -> pl.Expr:
        # Every summed fact is non-negative; floating-point rolling sums can leave -1e-14.
        return pl.col(column).rolling_sum(days, min_samples=1).over("customer_id").clip(0)

    # "Last" lookups are bounded to the 90-day window so a row never depends on how far back
    # its chunk happened to read.
    last_active = (
        pl.when(pl.col("active_day") > 0)
        .then(pl.col("day"))
        .forward_fill()
        .over("customer_id")
        .fill_null(pl.col("signup_date"))
    )
    csat_day = pl.when(pl.col("csat").is_not_null()).then(pl.col("day"))
    last_csat_day = csat_day.forward_fill().over("customer_id")
    last_csat = pl.col("csat").forward_fill().over("customer_id")
    resolved_90 = rolling("tickets_resolved", 90)
    users_7, users_30, users_90 = (rolling("active_users", n) for n in WINDOWS)
    return daily.select(
        "customer_id",
        "day",
        "signup_date",
        (users_7 / 7).alias("active_users_7d_mean"),
        (users_30 / 30).alias("active_users_30d_mean"),
        (users_90 / 90).alias("active_users_90d_mean"),
        rolling("sessions", 7).alias("sessions_7d_sum"),
        rolling("sessions", 30).alias("sessions_30d_sum"),
        rolling("events", 30).alias("events_30d_sum"),
        rolling("minutes", 7).alias("minutes_7d_sum"),
        rolling("minutes", 30).alias("minutes_30d_sum"),
        (rolling("features_used", 30) / 30).alias("features_used_30d_mean"),
        rolling("active_day", 30).alias("active_days_30d"),
        safe_ratio(users_7 / 7, users_30 / 30).alias("usage_trend_7d_30d"),
        safe_ratio(users_30 / 30, users_90 / 90).alias("usage_trend_30d_90d"),
        (pl.col("day") - last_active)
        .dt.total_days()
        .clip(upper_bound=HISTORY_DAYS)
        .alias("days_since_last_active"),
        rolling("failed_payments", 30).alias("failed_payments_30d"),
        rolling("failed_payments", 90).alias("failed_payments_90d"),
        rolling("payment_attempts", 90).alias("payment_attempts_90d"),
        rolling("invoices", 90).alias("invoices_90d"),
        rolling("invoiced", 90).alias("invoiced_amount_90d"),
        rolling("plan_changes", 90).alias("plan_changes_90d"),
        rolling("seat_changes", 90).alias("seat_changes_90d"),
        rolling("tickets", 30).alias("tickets_30d"),
        rolling("tickets", 90).alias("tickets_90d"),
        rolling("high_tickets", 30).alias("high_severity_tickets_30d"),
        resolved_90.alias("tickets_resolved_90d"),
        pl.when(resolved_90 > 0)
        .then(rolling("resolution_hours", 90) / resolved_90)
        .alias("resolution_hours_90d_mean"),
        pl.when((pl.col("day") - last_csat_day).dt.total_days() < HISTORY_DAYS)
        .then(last_csat)
        .alias("last_csat_90d"),
    )


def _profile_as_of(lake: Lakehouse, last: date, rows: pl.DataFrame) -> pl.DataFrame:
    """Plan, seats, MRR, discount and tenure as of the end of each row's day."""
    history = (
        lake.scan(SILVER_CUSTOMER_HISTORY.name)
        .filter(pl.col("updated_at") < pl.lit(last + timedelta(days=1)).cast(TIMESTAMP))
        .select("customer_id", "updated_at", "plan", "seats", "monthly_price", "discount_pct")
        .collect()
        .sort("updated_at")
    )
    keys = rows.select(
        "customer_id",
        "day",
        "signup_date",
        (pl.col("day").cast(TIMESTAMP) + pl.duration(days=1)).alias("known_by"),
    ).sort("known_by")
    profile = keys.join_asof(
        history,
        left_on="known_by",
        right_on="updated_at",
        by="customer_id",
        strategy="backward",
        allow_exact_matches=False,
        check_sortedness=False,  # sorted by known_by; join_asof cannot verify it per group
    )
    return profile.select(
        "customer_id",
        "day",
        (pl.col("day") - pl.col("signup_date")).dt.total_days().alias("tenure_days"),
        "plan",
        "seats",
        pl.col("monthly_price").alias("mrr"),
        "discount_pct",
        safe_ratio(pl.col("monthly_price"), pl.col("seats").cast(pl.Float64)).alias(
            "price_per_seat"
        ),
    )
