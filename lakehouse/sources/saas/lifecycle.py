"""Subscription lifecycle: signups, cancellations, seat/plan changes and list-price changes.

Every change of the day is recorded once and rendered into both ``subscription_events`` (one row
per change, with the subscription state after it) and ``customers`` (a profile version for every
change except cancellations, plus the whole initial base on day 0).

* Seat changes happen with probability 0.07 %/customer-day, growing with probability
  ``sigmoid(2 * deviation + 0.5)`` by 10-50 % (else shrinking); plan changes with 0.025 %/day,
  upgrading with probability ``sigmoid(3 * deviation + 1)``. At most one change a customer-day.
* A ``price_change`` drift reprices affected subscribed customers at 00:00:00 of its start date.
* Cancellations draw one uniform per customer against yesterday's hazard (``hazard.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from lakehouse.sources.saas import constants as cat
from lakehouse.sources.saas.config import DriftInjection
from lakehouse.sources.saas.contract import (
    CANCEL_REASONS,
    CHANNELS,
    EVENT_TYPES,
    INDUSTRIES,
    PLANS,
    REGIONS,
)
from lakehouse.sources.saas.frames import (
    SECONDS_PER_DAY,
    Day,
    customer_id,
    day_date,
    identifier,
    label,
    padded,
    source_frame,
    timestamp,
)
from lakehouse.sources.saas.hazard import Hazard, cancel_reason_codes
from lakehouse.sources.saas.population import Population
from lakehouse.sources.saas.records import INT64, Records

SIGNUP, PLAN_CHANGE, SEAT_CHANGE, PRICE_CHANGE, CANCEL = (
    EVENT_TYPES.index(kind)
    for kind in ("signup", "plan_change", "seat_change", "price_change", "cancel")
)


@dataclass
class _Changes(Records):
    """The day's subscription changes (reason -1 = none)."""

    customer: np.ndarray = field(default_factory=INT64)
    at_s: np.ndarray = field(default_factory=INT64)
    kind: np.ndarray = field(default_factory=INT64)
    reason: np.ndarray = field(default_factory=INT64)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class Lifecycle:
    """Applies the day's lifecycle changes to the population and renders them as frames."""

    def __init__(self, population: Population, drifts: list[DriftInjection]) -> None:
        self._population = population
        self._price_drifts = [d for d in drifts if d.kind == "price_change"]
        self._today = _Changes()

    def begin_day(self) -> None:
        """Forget yesterday's changes."""
        self._today = _Changes()

    def _record(
        self,
        customers: np.ndarray,
        at_s: np.ndarray,
        kind: int,
        reasons: np.ndarray | None = None,
    ) -> None:
        n = len(customers)
        self._today = self._today.extend(
            _Changes(
                customer=customers.astype(np.int64),
                at_s=np.broadcast_to(at_s, (n,)).astype(np.int64),
                kind=np.full(n, kind, dtype=np.int64),
                reason=np.full(n, -1, dtype=np.int64) if reasons is None else reasons,
            )
        )

    def cancel(
        self, rng: np.random.Generator, day: Day, at_risk: np.ndarray, hazard: Hazard
    ) -> None:
        """Cancel each customer in ``at_risk`` with probability ``hazard.daily`` (yesterday's)."""
        # One draw per customer slot keeps the stream aligned between drift scenarios.
        draws = rng.random(self._population.born)
        positions = np.flatnonzero(draws[at_risk] < hazard.daily)
        leaving = at_risk[positions]
        self._population.cancel_day[leaving] = day.index
        at_s = day.midnight + rng.integers(0, SECONDS_PER_DAY, size=len(leaving))
        reasons = cancel_reason_codes(rng, hazard.drivers(positions))
        self._record(leaving, at_s, CANCEL, reasons)

    def sign_up(self, rng: np.random.Generator, day: Day, new: np.ndarray) -> None:
        """Record signups of the newly created customers ``new`` during business hours."""
        at_s = day.midnight + rng.integers(7 * 3600, 20 * 3600, size=len(new))
        self._population.signup_at_s[new] = at_s
        self._record(new, at_s, SIGNUP)

    def change_subscriptions(
        self, rng: np.random.Generator, day: Day, subscribed: np.ndarray, deviation: np.ndarray
    ) -> None:
        """Random seat and plan changes among customers subscribed before today.

        ``deviation`` is the engagement deviation per customer in ``subscribed``.
        """
        pop = self._population
        # One draw per customer slot keeps the stream aligned between drift scenarios.
        u = rng.random(pop.born)[subscribed]
        eligible = pop.signup_day[subscribed] < day.index
        moving = eligible & (u < cat.SEAT_CHANGE_PROB + cat.PLAN_CHANGE_PROB)
        who, u, deviation = subscribed[moving], u[moving], deviation[moving]
        n = len(who)
        direction, size = rng.random(n), rng.uniform(0.1, 0.5, size=n)
        at_s = day.midnight + rng.integers(0, SECONDS_PER_DAY, size=n)

        plan, seats = pop.plan[who].astype(np.int64), pop.seats[who]
        grow = direction < _sigmoid(2.0 * deviation + 0.5)
        new_seats = np.where(
            grow,
            np.maximum(np.round(seats * (1.0 + size)), seats + 1),
            np.maximum(np.minimum(np.round(seats / (1.0 + size)), seats - 1), 1),
        ).astype(np.int64)
        new_seats = np.minimum(new_seats, cat.PLAN_SEATS_MAX[plan])
        upgrade = (plan < len(PLANS) - 1) & (
            (plan == 0) | (direction < _sigmoid(3.0 * deviation + 1.0))
        )
        new_plan = np.clip(np.where(upgrade, plan + 1, plan - 1), 0, len(PLANS) - 1)

        seat_change = (u < cat.SEAT_CHANGE_PROB) & (new_seats != seats)
        plan_change = (u >= cat.SEAT_CHANGE_PROB) & (new_plan != plan)
        pop.seats[who[seat_change]] = new_seats[seat_change]
        pop.plan[who[plan_change]] = new_plan[plan_change]
        # A downgrade may exceed the smaller plan's seat limit.
        pop.seats[who] = np.minimum(pop.seats[who], cat.PLAN_SEATS_MAX[pop.plan[who]])
        self._record(who[seat_change], at_s[seat_change], SEAT_CHANGE)
        self._record(who[plan_change], at_s[plan_change], PLAN_CHANGE)

    def reprice(self, day: Day, subscribed: np.ndarray) -> None:
        """Apply price drifts in force today and refresh every subscribed customer's price.

        Customers whose price moved without another change today get a ``price_change`` event
        at 00:00:00 (none on day 0: the initial snapshot already carries the prices).
        """
        pop = self._population
        pop.price_multiplier[subscribed] = pop.drift_multiplier(
            subscribed, self._price_drifts, day.date
        )
        price = pop.quoted_price(subscribed)
        moved = (price != pop.monthly_price[subscribed]) & (pop.signup_day[subscribed] < day.index)
        moved &= ~np.isin(subscribed, self._today.customer)
        pop.monthly_price[subscribed] = price
        if day.index > 0:
            self._record(subscribed[moved], np.array(day.midnight, dtype=np.int64), PRICE_CHANGE)

    def frames(self, day: Day, snapshot: np.ndarray) -> dict[str, pl.DataFrame]:
        """Today's ``customers`` and ``subscription_events`` frames.

        ``snapshot`` lists customers whose full profile is published at 00:00:00 (day 0's base).
        """
        changes = self._today.take(
            np.lexsort((self._today.kind, self._today.customer, self._today.at_s))
        )
        pop, capacity = self._population, self._population.capacity
        events = source_frame(
            "subscription_events",
            {
                "seq": np.arange(1, len(changes) + 1),
                "customer": changes.customer,
                "kind": changes.kind,
                "at_s": changes.at_s,
                "plan": pop.plan[changes.customer],
                "seats": pop.seats[changes.customer],
                "monthly_price": pop.monthly_price[changes.customer],
                "reason": changes.reason,
            },
            {
                "event_id": identifier("EVT", pl.lit(f"{day.date:%Y%m%d}"), padded("seq", 6)),
                "customer_id": customer_id("customer", capacity),
                "event_type": label("kind", EVENT_TYPES),
                "event_at": timestamp("at_s"),
                "plan": label("plan", PLANS),
                "seats": pl.col("seats"),
                "monthly_price": pl.col("monthly_price"),
                "cancel_reason": label("reason", CANCEL_REASONS),
            },
        )
        profile_rows = changes.kind != CANCEL
        who = np.concatenate([snapshot, changes.customer[profile_rows]]).astype(np.int64)
        at_s = np.concatenate(
            [np.full(len(snapshot), day.midnight, dtype=np.int64), changes.at_s[profile_rows]]
        )
        customers = source_frame(
            "customers",
            {
                "customer": who,
                "signup_day": pop.start_epoch_day + pop.signup_day[who],
                "plan": pop.plan[who],
                "seats": pop.seats[who],
                "region": pop.region[who],
                "industry": pop.industry[who],
                "channel": pop.channel[who],
                "monthly_price": pop.monthly_price[who],
                "discount_pct": pop.discount_pct[who],
                "at_s": at_s,
            },
            {
                "customer_id": customer_id("customer", capacity),
                "signup_date": day_date("signup_day"),
                "plan": label("plan", PLANS),
                "seats": pl.col("seats"),
                "region": label("region", REGIONS),
                "industry": label("industry", INDUSTRIES),
                "acquisition_channel": label("channel", CHANNELS),
                "monthly_price": pl.col("monthly_price"),
                "discount_pct": pl.col("discount_pct"),
                "updated_at": timestamp("at_s"),
            },
        )
        return {"customers": customers, "subscription_events": events}
