"""Customer profile state: who exists, their plan, seats, segment, price and subscription span.

Arrays are allocated once for every customer the run will ever have (initial base plus all
signups, known in advance), so indices are stable and customer ``i`` is ``C{i+1:07d}``.
"""

from __future__ import annotations

from datetime import date

import numpy as np

from lakehouse.sources.saas import constants as cat
from lakehouse.sources.saas.config import SEGMENT_VOCABULARIES, DriftInjection

NEVER = np.iinfo(np.int32).max
"""``cancel_day`` of a customer who has not cancelled."""


class Population:
    """Profile arrays of capacity ``capacity``; customers ``0..born-1`` exist."""

    def __init__(self, capacity: int, start_date: date) -> None:
        self.start = np.datetime64(start_date, "D")
        self.start_epoch_day = int(self.start.astype(np.int64))  # days since 1970-01-01
        self.born = 0
        self.signup_day = np.zeros(capacity, dtype=np.int32)  # negative: before day 0
        self.signup_at_s = np.zeros(capacity, dtype=np.int64)  # epoch seconds; 0 before day 0
        self.cancel_day = np.full(capacity, NEVER, dtype=np.int32)
        self.anniversary = np.zeros(capacity, dtype=np.int8)  # day of month of signup
        self.plan = np.zeros(capacity, dtype=np.int8)
        self.region = np.zeros(capacity, dtype=np.int8)
        self.industry = np.zeros(capacity, dtype=np.int8)
        self.channel = np.zeros(capacity, dtype=np.int8)
        self.seats = np.ones(capacity, dtype=np.int64)
        self.discount_pct = np.zeros(capacity)
        self.price_multiplier = np.ones(capacity)  # cumulative price drift applying to them
        self.monthly_price = np.zeros(capacity)

    def add(self, rng: np.random.Generator, signup_days: np.ndarray) -> np.ndarray:
        """Create customers with random profiles, signed up on ``signup_days``; return indices."""
        n = len(signup_days)
        idx = np.arange(self.born, self.born + n)
        self.born += n
        plan = rng.choice(len(cat.PLAN_MIX), size=n, p=cat.PLAN_MIX)
        seats = np.exp(rng.normal(cat.PLAN_SEATS_LOG_MEAN[plan], cat.PLAN_SEATS_LOG_SD[plan]))
        discounted = rng.random(n) < cat.PLAN_DISCOUNT_PROB[plan]
        # Discounts come in 5-point steps, as sales teams quote them.
        steps = np.floor(rng.random(n) * cat.PLAN_DISCOUNT_MAX[plan] / 5.0) + 1.0
        channel_u = rng.random(n)[:, None]
        dates = self.start + signup_days.astype("timedelta64[D]")

        self.signup_day[idx] = signup_days
        self.anniversary[idx] = (dates - dates.astype("datetime64[M]")).astype(np.int64) + 1
        self.plan[idx] = plan
        self.seats[idx] = np.clip(np.round(seats), 1, cat.PLAN_SEATS_MAX[plan]).astype(np.int64)
        self.region[idx] = rng.choice(len(cat.REGION_MIX), size=n, p=cat.REGION_MIX)
        self.industry[idx] = rng.choice(len(cat.INDUSTRY_MIX), size=n, p=cat.INDUSTRY_MIX)
        self.channel[idx] = (channel_u > np.cumsum(cat.CHANNEL_MIX_BY_PLAN[plan], axis=1)).sum(1)
        self.discount_pct[idx] = np.where(discounted, steps * 5.0, 0.0)
        self.monthly_price[idx] = self.quoted_price(idx)
        return idx

    @property
    def capacity(self) -> int:
        """Number of customer slots (every customer the run will ever have)."""
        return len(self.plan)

    def subscribed(self, day: int) -> np.ndarray:
        """Indices of customers who have signed up by ``day`` and not cancelled on or before it."""
        born = slice(0, self.born)
        return np.flatnonzero((self.signup_day[born] <= day) & (self.cancel_day[born] > day))

    def list_price_per_seat(self, idx: np.ndarray) -> np.ndarray:
        """Current list price per seat (plan list price times the customer's price drift)."""
        return cat.PLAN_LIST_PRICE[self.plan[idx]] * self.price_multiplier[idx]

    def quoted_price(self, idx: np.ndarray) -> np.ndarray:
        """Monthly price the customer would be billed now: list x seats x (1 - discount)."""
        gross = self.list_price_per_seat(idx) * self.seats[idx]
        return np.round(gross * (1.0 - self.discount_pct[idx] / 100.0), 2)

    def in_segment(self, idx: np.ndarray, drift: DriftInjection) -> np.ndarray:
        """Boolean mask over ``idx``: which customers a drift's segment applies to."""
        mask = np.ones(len(idx), dtype=bool)
        codes = {
            "plan": self.plan,
            "region": self.region,
            "industry": self.industry,
            "acquisition_channel": self.channel,
        }
        for column, value in (drift.segment or {}).items():
            mask &= codes[column][idx] == SEGMENT_VOCABULARIES[column].index(value)
        return mask

    def drift_multiplier(
        self, idx: np.ndarray, drifts: list[DriftInjection], today: date
    ) -> np.ndarray:
        """Product of ``1 + magnitude`` over the drifts in force on ``today`` that cover ``idx``."""
        multiplier = np.ones(len(idx))
        for drift in drifts:
            if drift.start <= today:
                multiplier[self.in_segment(idx, drift)] *= 1.0 + drift.magnitude
        return multiplier
