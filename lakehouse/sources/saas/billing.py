"""Monthly invoicing and card payments with dunning retries.

A subscribed customer is invoiced on every signup anniversary (day of month, clamped to the
month's last day, the signup day included) for its current ``monthly_price``: right after signup
for the first invoice, else in the nightly run (02:00-06:00 UTC); the first charge attempt follows
within 90 minutes. The failure probability of an attempt is

    sigmoid(c + plan_effect + region_effect + channel_effect - 0.8 * engagement_deviation)

with ``c = -3.7`` for first attempts and ``-1.0`` for retries (a declined card tends to stay
declined). Failed invoices are retried 3, 7 and 14 days after issue (4 attempts at most) while
the customer is still subscribed; after a cancellation the dunning stops.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import NamedTuple

import numpy as np
import polars as pl

from lakehouse.sources.saas import constants as cat
from lakehouse.sources.saas.contract import FAILURE_REASONS, PAYMENT_STATUSES, PLANS
from lakehouse.sources.saas.frames import (
    Day,
    customer_id,
    day_date,
    identifier,
    label,
    padded,
    source_frame,
    timestamp,
    yyyymmdd,
)
from lakehouse.sources.saas.population import Population
from lakehouse.sources.saas.records import FLOAT64, INT32, INT64, Records

_INVOICE_RUN_START_S = 2 * 3600  # nightly billing run, 02:00-06:00 UTC


@dataclass
class _Attempts(Records):
    """Charge attempts (queued retries, or all attempts of today)."""

    customer: np.ndarray = field(default_factory=INT64)
    invoice_day: np.ndarray = field(default_factory=INT32)  # epoch day of issue (in the id)
    amount: np.ndarray = field(default_factory=FLOAT64)
    attempt: np.ndarray = field(default_factory=INT64)  # 1-based attempt number
    due_day: np.ndarray = field(default_factory=INT64)  # simulation day of the attempt


@dataclass(frozen=True)
class BillingDay:
    """What one day of billing produced: failed attempts for the hazard, frames if emitted."""

    failed_customers: np.ndarray
    invoices: pl.DataFrame | None
    payments: pl.DataFrame | None


class Billing:
    """Invoice schedule and the dunning queue."""

    def __init__(self) -> None:
        self._pending = _Attempts()

    def step(
        self,
        rng: np.random.Generator,
        day: Day,
        population: Population,
        subscribed: np.ndarray,
        deviation: np.ndarray,
        *,
        emit: bool,
    ) -> BillingDay:
        """Issue today's invoices, make first and due retry attempts, and queue new retries.

        ``deviation`` is the engagement deviation of every customer slot (full-capacity array).
        """
        due_dom = _anniversaries_due(day.date)
        invoiced = subscribed[due_dom[population.anniversary[subscribed]]]
        amount = population.monthly_price[invoiced]
        fresh = _Attempts(
            customer=invoiced.astype(np.int64),
            invoice_day=np.full(len(invoiced), day.epoch_day, dtype=np.int32),
            amount=amount,
            attempt=np.ones(len(invoiced), dtype=np.int64),
            due_day=np.full(len(invoiced), day.index, dtype=np.int64),
        )
        is_due = self._pending.due_day == day.index
        retries = self._pending.take(is_due)
        still_subscribed = population.cancel_day[retries.customer] > day.index
        attempts = fresh.extend(retries.take(still_subscribed))

        customer = attempts.customer
        logit = (
            np.where(attempts.attempt == 1, cat.PAYMENT_FAIL_LOGIT, cat.RETRY_FAIL_LOGIT)
            + cat.PLAN_PAYMENT_EFFECT[population.plan[customer]]
            + cat.REGION_PAYMENT_EFFECT[population.region[customer]]
            + cat.CHANNEL_PAYMENT_EFFECT[population.channel[customer]]
            + cat.PAYMENT_ENGAGEMENT_EFFECT * deviation[customer]
        )
        failed = rng.random(len(customer)) < 1.0 / (1.0 + np.exp(-logit))
        # Timestamps and reasons do not feed back into the state; drawn every day all the same.
        details = _Details(
            invoice_offset=rng.integers(0, 4 * 3600, size=len(invoiced)),
            payment_delay=rng.integers(5 * 60, 90 * 60, size=len(invoiced)),
            retry_offset=rng.integers(0, 4 * 3600, size=len(customer) - len(invoiced)),
            reason=rng.choice(len(FAILURE_REASONS), size=len(customer), p=cat.FAILURE_REASON_MIX),
        )

        retry = failed & (attempts.attempt <= len(cat.RETRY_OFFSETS_DAYS))
        queued = attempts.take(retry)
        offsets = np.asarray(cat.RETRY_OFFSETS_DAYS)[queued.attempt - 1]
        queued.due_day = day.index + offsets - (day.epoch_day - queued.invoice_day)
        queued.attempt = queued.attempt + 1
        self._pending = self._pending.take(~is_due).extend(queued)

        if not emit:
            return BillingDay(customer[failed], None, None)
        return BillingDay(customer[failed], *_frames(day, population, attempts, failed, details))


class _Details(NamedTuple):
    """Emission-only draws of a billing day."""

    invoice_offset: np.ndarray  # seconds into the invoice run, one per invoice
    payment_delay: np.ndarray  # seconds from invoice to first attempt, one per invoice
    retry_offset: np.ndarray  # seconds into the run, one per retry
    reason: np.ndarray  # failure reason code, one per attempt


def _frames(
    day: Day, population: Population, attempts: _Attempts, failed: np.ndarray, details: _Details
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The day's ``invoices`` and ``payments`` frames; ``attempts`` lists first attempts first."""
    invoiced = attempts.customer[attempts.attempt == 1]
    amount = attempts.amount[: len(invoiced)]
    run_start = day.midnight + _INVOICE_RUN_START_S
    # The first invoice is issued right after signup; later ones in the nightly run.
    issued_s = np.where(
        population.signup_day[invoiced] == day.index,
        population.signup_at_s[invoiced] + 30 + details.invoice_offset // 60,
        run_start + details.invoice_offset,
    )
    # First attempts follow their invoice; retries run in the same nightly window.
    attempted_s = np.concatenate(
        [issued_s + details.payment_delay, run_start + details.retry_offset]
    )
    capacity = population.capacity
    gross = np.round(population.list_price_per_seat(invoiced) * population.seats[invoiced], 2)
    invoice_id = identifier("INV", yyyymmdd("invoice_day"), padded("customer_no", 7))
    invoices = source_frame(
        "invoices",
        {
            "customer": invoiced,
            "customer_no": invoiced + 1,
            "invoice_day": attempts.invoice_day[: len(invoiced)],
            "issued_s": issued_s,
            "period_end": _period_end(day.date)[population.anniversary[invoiced]],
            "amount": amount,
            # Never a rounding artefact below zero; + 0.0 turns -0.0 into 0.0.
            "discount": np.maximum(np.round(gross - amount, 2), 0.0) + 0.0,
            "plan": population.plan[invoiced],
        },
        {
            "invoice_id": invoice_id,
            "customer_id": customer_id("customer", capacity),
            "issued_at": timestamp("issued_s"),
            "period_start": pl.lit(day.date),
            "period_end": day_date("period_end"),
            "amount": pl.col("amount"),
            "discount": pl.col("discount"),
            "plan": label("plan", PLANS),
        },
        sort_by=("issued_s", "customer"),
    )
    payments = source_frame(
        "payments",
        {
            "customer": attempts.customer,
            "customer_no": attempts.customer + 1,
            "invoice_day": attempts.invoice_day,
            "attempted_s": attempted_s,
            "amount": attempts.amount,
            "attempt": attempts.attempt,
            "failed": failed.astype(np.int64),
            "reason": np.where(failed, details.reason, -1),
        },
        {
            "payment_id": identifier(
                "PAY", yyyymmdd("invoice_day"), padded("customer_no", 7), padded("attempt", 1)
            ),
            "invoice_id": invoice_id,
            "customer_id": customer_id("customer", capacity),
            "attempted_at": timestamp("attempted_s"),
            "amount": pl.col("amount"),
            "attempt": pl.col("attempt"),
            "status": label("failed", PAYMENT_STATUSES),
            "failure_reason": label("reason", FAILURE_REASONS),
        },
        sort_by=("attempted_s", "invoice_day", "customer", "attempt"),
    )
    return invoices, payments


def _anniversaries_due(today: date) -> np.ndarray:
    """Boolean lookup by day-of-month of signup (1..31): is the anniversary today?"""
    last = calendar.monthrange(today.year, today.month)[1]
    return np.minimum(np.arange(32), last) == today.day


def _period_end(today: date) -> np.ndarray:
    """Epoch day of the day before the next anniversary, by day-of-month of signup (1..31)."""
    year, month = (today.year + 1, 1) if today.month == 12 else (today.year, today.month + 1)
    last = calendar.monthrange(year, month)[1]
    epoch = date(1970, 1, 1)
    ends = [
        (date(year, month, min(max(dom, 1), last)) - timedelta(days=1) - epoch).days
        for dom in range(32)
    ]
    return np.asarray(ends, dtype=np.int32)
