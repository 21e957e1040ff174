"""The landing-file contract: which files a source system drops, where, and with which columns.

A *landing folder* holds one sub-folder per source and one partition per calendar day::

    {landing_dir}/{source}/date=YYYY-MM-DD/part-00000.{csv|jsonl|parquet}

Every delivered day has exactly one file per source, possibly with zero rows, so the presence of a
partition means "this day was delivered". Text formats (CSV, JSON lines) carry timestamps as
ISO-8601 UTC strings with a ``Z`` suffix (``2025-01-31T09:15:00Z``) and dates as ``YYYY-MM-DD``;
Parquet carries proper ``Date`` / ``Datetime("us", "UTC")`` types. ``lakehouse.ingest`` reads and
validates any of the three formats into a frame with exactly the contract's dtypes.

Folders starting with ``_`` (e.g. ``_evaluation``) are never landing sources: they hold simulator
truth for evaluation only and must not be ingested as features.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from types import MappingProxyType
from typing import Literal

import polars as pl

FileFormat = Literal["csv", "jsonl", "parquet"]
FILE_FORMATS: tuple[FileFormat, ...] = ("csv", "jsonl", "parquet")

TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
DATE_FORMAT = "%Y-%m-%d"
TIMESTAMP = pl.Datetime("us", "UTC")
PART_NAME = "part-00000"
EVALUATION_DIR = "_evaluation"

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


@dataclass(frozen=True)
class LandingSource:
    """One source system feed: its file format, typed columns and identity.

    ``key`` identifies a row version; rows with the same business id may appear again later
    (e.g. a ticket when opened and when resolved), so silver layers should upsert on the id and
    keep the row with the latest ``timestamp_column``.
    """

    name: str
    file_format: FileFormat
    columns: Mapping[str, pl.DataType]
    key: tuple[str, ...]
    timestamp_column: str
    description: str
    nullable: frozenset[str] = frozenset()
    categories: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Read-only views so a shared contract cannot be mutated by a caller.
        object.__setattr__(self, "columns", MappingProxyType(dict(self.columns)))
        object.__setattr__(self, "categories", MappingProxyType(dict(self.categories)))
        unknown = (set(self.key) | self.nullable | set(self.categories)) - set(self.columns)
        if unknown or self.timestamp_column not in self.columns:
            raise ValueError(f"{self.name}: contract references unknown columns {sorted(unknown)}")

    @property
    def schema(self) -> pl.Schema:
        """The contract as a polars schema (column order is the file's column order)."""
        return pl.Schema(dict(self.columns))


LANDING_SOURCES: dict[str, LandingSource] = {
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
        ),
    )
}

CHURN_TRUTH_COLUMNS: dict[str, pl.DataType] = {
    "customer_id": pl.String(),
    "as_of_date": pl.Date(),
    "churn_probability_30d": pl.Float64(),
    "daily_hazard": pl.Float64(),
}
"""Schema of the evaluation-only truth table (see docs/simulator.md); never a feature source."""


def _source(source: str | LandingSource) -> LandingSource:
    if isinstance(source, LandingSource):
        return source
    try:
        return LANDING_SOURCES[source]
    except KeyError:
        known = sorted(LANDING_SOURCES)
        raise KeyError(f"unknown landing source {source!r}; known: {known}") from None


def partition_dir(landing_dir: Path, source: str, day: date) -> Path:
    """The folder holding one source's files for one day."""
    return Path(landing_dir) / _source(source).name / f"date={day.isoformat()}"


def landing_path(
    landing_dir: Path, source: str, day: date, file_format: FileFormat | None = None
) -> Path:
    """Path of a source's file for ``day``; the format defaults to the contract's format."""
    fmt = file_format or _source(source).file_format
    if fmt not in FILE_FORMATS:
        raise ValueError(f"unknown file format {fmt!r}; expected one of {FILE_FORMATS}")
    return partition_dir(landing_dir, source, day) / f"{PART_NAME}.{fmt}"


def truth_path(landing_dir: Path, day: date) -> Path:
    """Path of the evaluation-only churn truth for ``day`` (outside every landing source)."""
    return (
        Path(landing_dir)
        / EVALUATION_DIR
        / "churn_truth"
        / f"date={day.isoformat()}"
        / f"{PART_NAME}.parquet"
    )


def list_landing_files(landing_dir: Path, source: str, day: date | None = None) -> list[Path]:
    """Sorted data files of ``source`` for ``day``, or for every delivered day when ``day`` is None.

    Only files with a known format extension count; temporary or hidden files are ignored.
    """
    root = Path(landing_dir) / _source(source).name
    if day is None:
        folders = sorted(root.glob("date=*"))
    else:
        folders = [partition_dir(landing_dir, source, day)]
    return sorted(
        path
        for folder in folders
        if folder.is_dir()
        for path in folder.iterdir()
        if path.is_file()
        and not path.name.startswith((".", "_"))
        and path.suffix.lstrip(".") in FILE_FORMATS
    )


def partition_date(path: Path) -> date:
    """The ``date=YYYY-MM-DD`` partition a landing file belongs to."""
    return date.fromisoformat(path.parent.name.removeprefix("date="))
