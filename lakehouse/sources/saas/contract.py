"""The SaaS source system's feeds: CRM profiles, subscription events, usage, invoices,
payments and support tickets (see ``docs/simulator.md``), with their vocabularies.

The simulator in this package writes exactly these feeds; a real SaaS company's exports that
follow the same contract are ingested the same way.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl

from lakehouse.catalog import TIMESTAMP
from lakehouse.sources.contract import LandingSource, evaluation_path

# Categorical vocabularies shared by the contract and the simulator.
PLANS = ("starter", "growth", "business", "enterprise")
REGIONS = ("NA", "EMEA", "APAC", "LATAM")
INDUSTRIES = (
    "software",
    "fintech",
    "healthcare",
    "retail",
    "manufacturing",
    "education",
    "media",
)
CHANNELS = ("organic", "paid_search", "referral", "partner", "outbound_sales")
EVENT_TYPES = ("signup", "plan_change", "seat_change", "price_change", "cancel")
CANCEL_REASONS = ("low_usage", "payment_failed", "support_experience", "too_expensive", "other")
PAYMENT_STATUSES = ("succeeded", "failed")
FAILURE_REASONS = ("card_declined", "insufficient_funds", "expired_card", "processing_error")
SEVERITIES = ("low", "medium", "high", "urgent")
TICKET_CATEGORIES = ("billing", "bug", "how_to", "integration", "performance", "account")
TICKET_STATUSES = ("open", "resolved")

# Upper bounds no customer of this business reaches (docs/simulator.md, "Value bounds"): far
# above the simulated world, far below an overflow or a unit error (cents for currency, ms for h).
MAX_SEATS = 100_000
MAX_MONTHLY_AMOUNT = 10_000_000.0  # currency per month: 100k seats x 100 per seat
MAX_DAILY_MINUTES = MAX_SEATS * 24 * 60.0  # every seat active all day
MAX_DUNNING_ATTEMPTS = 4  # the first charge plus retries 3, 7 and 14 days after the invoice
MAX_RESOLUTION_HOURS = 10 * 365 * 24.0

SAAS_FEEDS: dict[str, LandingSource] = {
    source.name: source
    for source in (
        LandingSource(
            name="customers",
            file_format="csv",
            columns={
                "customer_id": pl.String(),
                "signup_date": pl.Date(),
                "plan": pl.String(),
                "seats": pl.Int64(),
                "region": pl.String(),
                "industry": pl.String(),
                "acquisition_channel": pl.String(),
                "monthly_price": pl.Float64(),
                "discount_pct": pl.Float64(),
                "updated_at": TIMESTAMP,
            },
            key=("customer_id", "updated_at"),
            timestamp_column="updated_at",
            description=(
                "Customer profile versions: the full initial base on the first day, then one row "
                "per signup and per plan, seat or price change. monthly_price = list price per "
                "seat x seats x (1 - discount_pct/100); discount_pct is in percentage points."
            ),
            categories={
                "plan": PLANS,
                "region": REGIONS,
                "industry": INDUSTRIES,
                "acquisition_channel": CHANNELS,
            },
            bounds={
                "seats": (1, MAX_SEATS),
                "monthly_price": (0, MAX_MONTHLY_AMOUNT),
                "discount_pct": (0, 100),
            },
        ),
        LandingSource(
            name="subscription_events",
            file_format="jsonl",
            columns={
                "event_id": pl.String(),
                "customer_id": pl.String(),
                "event_type": pl.String(),
                "event_at": TIMESTAMP,
                "plan": pl.String(),
                "seats": pl.Int64(),
                "monthly_price": pl.Float64(),
                "cancel_reason": pl.String(),
            },
            key=("event_id",),
            timestamp_column="event_at",
            description=(
                "Subscription lifecycle events with the subscription state after the event. "
                "A cancel ends the subscription: no later usage, invoices or new tickets."
            ),
            nullable=frozenset({"cancel_reason"}),
            categories={"event_type": EVENT_TYPES, "plan": PLANS, "cancel_reason": CANCEL_REASONS},
            bounds={"seats": (1, MAX_SEATS), "monthly_price": (0, MAX_MONTHLY_AMOUNT)},
        ),
        LandingSource(
            name="usage",
            file_format="parquet",
            columns={
                "customer_id": pl.String(),
                "usage_date": pl.Date(),
                "active_users": pl.Int64(),
                "sessions": pl.Int64(),
                "events": pl.Int64(),
                "minutes": pl.Float64(),
                "features_used": pl.Int64(),
            },
            key=("customer_id", "usage_date"),
            timestamp_column="usage_date",
            description=(
                "Daily product usage, one row per subscribed customer with at least one active "
                "user that day; a missing row means zero usage."
            ),
            bounds={
                "active_users": (1, MAX_SEATS),
                "sessions": (0, 100 * MAX_SEATS),
                "events": (0, 10_000 * MAX_SEATS),
                "minutes": (0, MAX_DAILY_MINUTES),
                "features_used": (0, 1_000),
            },
        ),
        LandingSource(
            name="invoices",
            file_format="jsonl",
            columns={
                "invoice_id": pl.String(),
                "customer_id": pl.String(),
                "issued_at": TIMESTAMP,
                "period_start": pl.Date(),
                "period_end": pl.Date(),
                "amount": pl.Float64(),
                "discount": pl.Float64(),
                "plan": pl.String(),
            },
            key=("invoice_id",),
            timestamp_column="issued_at",
            description=(
                "Monthly invoices issued on the signup anniversary (day of month clamped to the "
                "month's length). amount is net of discount; discount is the currency amount."
            ),
            categories={"plan": PLANS},
            bounds={"amount": (0, MAX_MONTHLY_AMOUNT), "discount": (0, MAX_MONTHLY_AMOUNT)},
            future_columns=frozenset({"period_end"}),
        ),
        LandingSource(
            name="payments",
            file_format="jsonl",
            columns={
                "payment_id": pl.String(),
                "invoice_id": pl.String(),
                "customer_id": pl.String(),
                "attempted_at": TIMESTAMP,
                "amount": pl.Float64(),
                "attempt": pl.Int64(),
                "status": pl.String(),
                "failure_reason": pl.String(),
            },
            key=("payment_id",),
            timestamp_column="attempted_at",
            description=(
                "Card charge attempts. A failed attempt is retried 3, 7 and 14 days after the "
                "invoice (dunning, at most 4 attempts) while the customer is subscribed."
            ),
            nullable=frozenset({"failure_reason"}),
            categories={"status": PAYMENT_STATUSES, "failure_reason": FAILURE_REASONS},
            bounds={"amount": (0, MAX_MONTHLY_AMOUNT), "attempt": (1, MAX_DUNNING_ATTEMPTS)},
        ),
        LandingSource(
            name="tickets",
            file_format="csv",
            columns={
                "ticket_id": pl.String(),
                "customer_id": pl.String(),
                "opened_at": TIMESTAMP,
                "updated_at": TIMESTAMP,
                "severity": pl.String(),
                "category": pl.String(),
                "status": pl.String(),
                "resolved_at": TIMESTAMP,
                "resolution_hours": pl.Float64(),
                "csat": pl.Int64(),
            },
            key=("ticket_id", "updated_at"),
            timestamp_column="updated_at",
            description=(
                "Support tickets, emitted when opened (status open) and again when resolved "
                "(same ticket_id, status resolved); both rows can land in the same file. csat "
                "(1-5) is only set on resolved rows, and only when the customer answered."
            ),
            nullable=frozenset({"resolved_at", "resolution_hours", "csat"}),
            categories={
                "severity": SEVERITIES,
                "category": TICKET_CATEGORIES,
                "status": TICKET_STATUSES,
            },
            bounds={"resolution_hours": (0, MAX_RESOLUTION_HOURS), "csat": (1, 5)},
        ),
    )
}

CHURN_TRUTH = "churn_truth"
CHURN_TRUTH_COLUMNS: dict[str, pl.DataType] = {
    "customer_id": pl.String(),
    "as_of_date": pl.Date(),
    "churn_probability_30d": pl.Float64(),
    "daily_hazard": pl.Float64(),
}
"""Schema of the evaluation-only truth table (see docs/simulator.md); never a feature source."""


def truth_path(landing_dir: Path, day: date) -> Path:
    """Path of the evaluation-only churn truth for ``day`` (outside every landing feed)."""
    return evaluation_path(landing_dir, CHURN_TRUTH, day)
