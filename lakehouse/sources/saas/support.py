"""Support tickets: opened by subscribed customers, resolved hours or days later, rated by CSAT.

Tickets a customer opens per day ~ Poisson(rate) with

    rate = weekday * (0.011 * (seats / 10) ** 0.35 * plan_factor * exp(-0.6 * deviation)
                      + 0.02 * [a payment failed in the last 30 days])

(the second part are billing tickets). Severity odds low:medium:high:urgent are
``exp(0, -0.25, -1.1, -2.2)`` with the high/urgent logits raised by ``-1.0 * deviation``.
Resolution takes lognormal hours (median 30 / 16 / 6 / 2.5 h by severity, times a plan factor,
log-sd 0.8). 55 % of customers answer CSAT: ``round(N(4.3 - 0.5 log(hours / median) - 0.25
[high/urgent] + 0.8 deviation, 0.9))`` clipped to 1..5. A ticket opened before its customer
cancelled is still resolved (and emitted) afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from lakehouse.sources.rng import choice_rows
from lakehouse.sources.saas import constants as cat
from lakehouse.sources.saas.contract import SEVERITIES, TICKET_CATEGORIES, TICKET_STATUSES
from lakehouse.sources.saas.frames import (
    SECONDS_PER_DAY,
    Day,
    customer_id,
    identifier,
    label,
    padded,
    source_frame,
    timestamp,
    where,
    yyyymmdd,
)
from lakehouse.sources.saas.population import Population
from lakehouse.sources.saas.records import INT32, INT64, Records

SEVERE = SEVERITIES.index("high")  # severity codes >= this count as high/urgent
LOW_CSAT = 2  # CSAT answers <= this count as unhappy
_BILLING = TICKET_CATEGORIES.index("billing")


@dataclass
class _Tickets(Records):
    """Tickets as parallel arrays (csat -1 = no answer)."""

    customer: np.ndarray = field(default_factory=INT64)
    open_day: np.ndarray = field(default_factory=INT32)  # epoch day, part of the ticket id
    seq: np.ndarray = field(default_factory=INT64)  # 1-based number within the opening day
    opened_s: np.ndarray = field(default_factory=INT64)
    resolved_s: np.ndarray = field(default_factory=INT64)
    resolve_day: np.ndarray = field(default_factory=INT64)  # simulation day of resolution
    severity: np.ndarray = field(default_factory=INT64)
    category: np.ndarray = field(default_factory=INT64)
    csat: np.ndarray = field(default_factory=INT64)


@dataclass(frozen=True)
class SupportDay:
    """Signals for the hazard (customer index per event) and the day's frame if emitted."""

    severe_opened: np.ndarray
    low_csat_resolved: np.ndarray
    tickets: pl.DataFrame | None


class Support:
    """Ticket arrivals and the queue of open tickets."""

    def __init__(self) -> None:
        self._open = _Tickets()

    def step(
        self,
        rng: np.random.Generator,
        day: Day,
        population: Population,
        subscribed: np.ndarray,
        deviation: np.ndarray,
        recent_payment_failure: np.ndarray,
        *,
        emit: bool,
    ) -> SupportDay:
        """Open today's tickets for ``subscribed`` and resolve every ticket due today.

        ``deviation`` and ``recent_payment_failure`` are per customer in ``subscribed``.
        """
        opened = self._open_tickets(
            rng, day, population, subscribed, deviation, recent_payment_failure
        )
        queue = self._open.extend(opened)
        done = queue.resolve_day == day.index
        resolved = queue.take(done)
        self._open = queue.take(~done)
        unhappy = (resolved.csat >= 1) & (resolved.csat <= LOW_CSAT)
        return SupportDay(
            severe_opened=opened.customer[opened.severity >= SEVERE],
            low_csat_resolved=resolved.customer[unhappy],
            tickets=_frame(opened, resolved, population.capacity) if emit else None,
        )

    @staticmethod
    def _open_tickets(
        rng: np.random.Generator,
        day: Day,
        population: Population,
        subscribed: np.ndarray,
        deviation: np.ndarray,
        recent_payment_failure: np.ndarray,
    ) -> _Tickets:
        plan = population.plan[subscribed]
        weekday = cat.TICKET_WEEKDAY_FACTOR[day.weekday]
        product_rate = weekday * (
            cat.TICKET_RATE
            * (population.seats[subscribed] / 10.0) ** cat.TICKET_SEATS_ELASTICITY
            * cat.PLAN_TICKET_FACTOR[plan]
            * np.exp(cat.TICKET_ENGAGEMENT_EFFECT * deviation)
        )
        billing_rate = weekday * cat.TICKET_BILLING_RATE * recent_payment_failure
        count = rng.poisson(product_rate + billing_rate)
        rows = np.repeat(np.arange(len(subscribed)), count)
        n = len(rows)

        category_weights = product_rate[rows, None] * cat.CATEGORY_MIX[None, :]
        category_weights[:, _BILLING] += billing_rate[rows]
        severity_logits = np.tile(cat.SEVERITY_LOGITS, (n, 1))
        severity_logits[:, SEVERE:] += cat.SEVERITY_ENGAGEMENT_EFFECT * deviation[rows, None]
        category = choice_rows(rng, category_weights)
        severity = choice_rows(rng, np.exp(severity_logits))
        opened_s = day.midnight + rng.integers(6 * 3600, 22 * 3600, size=n)
        # A customer who signed up today cannot have opened a ticket before signing up.
        opened_s = np.maximum(opened_s, population.signup_at_s[subscribed[rows]] + 600)

        median = cat.RESOLUTION_MEDIAN_HOURS[severity] * cat.PLAN_RESOLUTION_FACTOR[plan[rows]]
        hours = rng.lognormal(np.log(median), cat.RESOLUTION_LOG_SD)
        resolved_s = opened_s + np.maximum(np.round(hours * 3600), 60).astype(np.int64)
        csat_mean = (
            cat.CSAT_BASE
            - 0.5 * np.log(hours / median)
            - 0.25 * (severity >= SEVERE)
            + 0.8 * deviation[rows]
        )
        csat = np.clip(np.round(rng.normal(csat_mean, cat.CSAT_NOISE_SD)), 1, 5).astype(np.int64)
        answered = rng.random(n) < cat.CSAT_RESPONSE_PROB

        order = np.lexsort((rows, opened_s))  # ticket numbers follow opening time
        tickets = _Tickets(
            customer=subscribed[rows].astype(np.int64),
            open_day=np.full(n, day.epoch_day, dtype=np.int32),
            seq=np.zeros(n, dtype=np.int64),
            opened_s=opened_s,
            resolved_s=resolved_s,
            resolve_day=day.index + (resolved_s - day.midnight) // SECONDS_PER_DAY,
            severity=severity,
            category=category,
            csat=np.where(answered, csat, -1),
        ).take(order)
        tickets.seq = np.arange(1, n + 1, dtype=np.int64)
        return tickets


def _frame(opened: _Tickets, resolved: _Tickets, capacity: int) -> pl.DataFrame:
    """Open rows for ``opened`` and resolved rows for ``resolved``, ordered by update time."""
    both = opened.extend(resolved)
    is_resolved = np.arange(len(both)) >= len(opened)
    return source_frame(
        "tickets",
        {
            "customer": both.customer,
            "open_day": both.open_day,
            "seq": both.seq,
            "opened_s": both.opened_s,
            "updated_s": np.where(is_resolved, both.resolved_s, both.opened_s),
            "resolved_s": both.resolved_s,
            "severity": both.severity,
            "category": both.category,
            "resolved": is_resolved,
            "answered": is_resolved & (both.csat > 0),
            "csat": both.csat,
        },
        {
            "ticket_id": identifier("TKT", yyyymmdd("open_day"), padded("seq", 6)),
            "customer_id": customer_id("customer", capacity),
            "opened_at": timestamp("opened_s"),
            "updated_at": timestamp("updated_s"),
            "severity": label("severity", SEVERITIES),
            "category": label("category", TICKET_CATEGORIES),
            "status": label("resolved", TICKET_STATUSES),
            "resolved_at": where("resolved", timestamp("resolved_s")),
            "resolution_hours": where(
                "resolved", ((pl.col("resolved_s") - pl.col("opened_s")) / 3600.0).round(2)
            ),
            "csat": where("answered", pl.col("csat")),
        },
        sort_by=("updated_s", "open_day", "seq", "resolved"),
    )
