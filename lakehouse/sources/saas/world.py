"""One simulated world advanced day by day, in a fixed order of events.

Day ``t`` runs, in this order:

1. cancellations, drawn from the hazard computed at the end of day ``t-1`` (none on day 0);
2. signups (their count is fixed in advance from ``(seed, day)``);
3. seat/plan changes, then repricing (price drifts in force today);
4. latent engagement update and usage;
5. invoices and payment attempts (first attempts and due dunning retries);
6. tickets opened today and tickets resolved today;
7. rolling windows updated with today's observations, then the hazard at the end of day ``t``
   (it drives cancellations on ``t+1`` and is the truth ``as_of_date = t``), with the odds of
   ``churn_risk`` drifts in force applied.

All state lives in numpy arrays sized for every customer the run will ever have; each day costs
O(customers) vectorised work, and memory is O(customers * 30) for the rolling windows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from lakehouse.sources.rng import stream
from lakehouse.sources.saas import constants as cat
from lakehouse.sources.saas.billing import Billing
from lakehouse.sources.saas.config import SimulationConfig
from lakehouse.sources.saas.engagement import Engagement
from lakehouse.sources.saas.frames import Day, customer_id, truth_frame
from lakehouse.sources.saas.hazard import Hazard, HazardInputs, compute_hazard, with_odds
from lakehouse.sources.saas.lifecycle import Lifecycle
from lakehouse.sources.saas.population import Population
from lakehouse.sources.saas.support import Support
from lakehouse.sources.saas.windows import RollingCounts, RollingSums

WINDOW_DAYS = 30


@dataclass(frozen=True)
class DayOutput:
    """Everything one simulated day emits: a frame per landing source plus the truth."""

    day: Day
    frames: dict[str, pl.DataFrame]
    truth: pl.DataFrame


def signup_counts(config: SimulationConfig) -> np.ndarray:
    """New signups per simulated day, a Poisson draw from ``(seed, day)`` only."""
    weekday0 = config.start_date.weekday()
    mean = config.signup_rate * config.customers
    return np.array(
        [
            stream(config.seed, "signups", day).poisson(
                mean * cat.SIGNUP_WEEKDAY_FACTOR[(weekday0 + day) % 7]
            )
            for day in range(config.days)
        ],
        dtype=np.int64,
    )


class World:
    """The simulated SaaS company; call ``step`` once per day from day 0."""

    def __init__(self, config: SimulationConfig) -> None:
        self.config = config
        self._signups = signup_counts(config)
        capacity = config.customers + int(self._signups.sum())
        self.population = Population(capacity, config.start_date)
        self.engagement = Engagement(capacity)
        self._usage_drifts = [d for d in config.drift if d.kind == "usage_shift"]
        self._risk_drifts = [d for d in config.drift if d.kind == "churn_risk"]
        self._lifecycle = Lifecycle(self.population, list(config.drift))
        self._billing = Billing()
        self._support = Support()
        self._active_users = RollingSums(capacity, (7, WINDOW_DAYS))
        self._features_used = RollingSums(capacity, (WINDOW_DAYS,), np.int16)
        self._usage_rows = RollingSums(capacity, (WINDOW_DAYS,), np.int8)
        self._failed_payments = RollingCounts(capacity, WINDOW_DAYS)
        self._severe_tickets = RollingCounts(capacity, WINDOW_DAYS)
        self._low_csat = RollingCounts(capacity, WINDOW_DAYS)
        # Hazard at the end of the previous day, for the customers subscribed then.
        self._at_risk = np.zeros(0, dtype=np.int64)
        self._hazard = Hazard(np.zeros(0), ())
        self.next_day = 0

        rng = stream(config.seed, "initial")
        tenure = 1 + np.floor(rng.exponential(cat.INITIAL_TENURE_MEAN_DAYS, config.customers))
        tenure = np.minimum(tenure, cat.INITIAL_TENURE_MAX_DAYS).astype(np.int32)
        self._initial = self.population.add(rng, -tenure)
        self.engagement.add(rng, self._initial, initial=True)

    def step(self, *, emit: bool) -> DayOutput | None:
        """Simulate the next day; build its frames only when ``emit`` (state evolves either way)."""
        cfg = self.config
        day = Day(self.next_day, cfg.date_of(self.next_day))
        self.next_day += 1

        def rng(name: str) -> np.random.Generator:
            return stream(cfg.seed, name, day.index)

        pop, eng, lifecycle = self.population, self.engagement, self._lifecycle
        lifecycle.begin_day()
        if day.index > 0:
            lifecycle.cancel(rng("cancel"), day, self._at_risk, self._hazard)
        signup_rng = rng("signup")
        new = pop.add(signup_rng, np.full(self._signups[day.index], day.index, dtype=np.int32))
        eng.add(signup_rng, new, initial=False)
        lifecycle.sign_up(signup_rng, day, new)

        subscribed = pop.subscribed(day.index)
        deviation = eng.deviation()
        lifecycle.change_subscriptions(rng("changes"), day, subscribed, deviation[subscribed])
        lifecycle.reprice(day, subscribed)

        eng.step(rng("engagement"), pop.born)
        deviation = eng.deviation()
        active, features = eng.daily_usage(
            rng("usage"),
            subscribed,
            pop.seats[subscribed],
            cat.PLAN_FEATURES[pop.plan[subscribed]],
            day,
            pop.drift_multiplier(subscribed, self._usage_drifts, day.date),
        )

        billing = self._billing.step(rng("billing"), day, pop, subscribed, deviation, emit=emit)
        self._failed_payments.push(billing.failed_customers)
        support = self._support.step(
            rng("support"),
            day,
            pop,
            subscribed,
            deviation[subscribed],
            self._failed_payments.counts[subscribed] > 0,
            emit=emit,
        )
        self._severe_tickets.push(support.severe_opened)
        self._low_csat.push(support.low_csat_resolved)
        for window, values in (
            (self._active_users, active),
            (self._features_used, features),
            (self._usage_rows, active > 0),
        ):
            today = np.zeros(pop.capacity, dtype=np.int64)
            today[subscribed] = values
            window.push(day.index, today)

        hazard = compute_hazard(self._hazard_inputs(day, subscribed), cfg.hazard)
        if self._risk_drifts:
            hazard = with_odds(
                hazard, pop.drift_multiplier(subscribed, self._risk_drifts, day.date)
            )
        self._at_risk, self._hazard = subscribed, hazard
        if not emit:
            return None

        frames = lifecycle.frames(day, self._initial if day.index == 0 else np.zeros(0, int))
        frames["usage"] = eng.usage_frame(rng("usage_detail"), day, subscribed, active, features)
        # Emitted days always carry their frames (only state-only days leave them out).
        assert billing.invoices is not None and billing.payments is not None
        assert support.tickets is not None
        frames["invoices"] = billing.invoices
        frames["payments"] = billing.payments
        frames["tickets"] = support.tickets
        truth = truth_frame(
            {
                "customer": subscribed,
                "probability": hazard.churn_probability_30d,
                "hazard": hazard.daily,
            },
            {
                "customer_id": customer_id("customer", pop.capacity),
                "as_of_date": pl.lit(day.date),
                "churn_probability_30d": pl.col("probability"),
                "daily_hazard": pl.col("hazard"),
            },
        )
        return DayOutput(day, frames, truth)

    def _hazard_inputs(self, day: Day, idx: np.ndarray) -> HazardInputs:
        """Observable quantities at the end of ``day`` for customers ``idx``."""
        pop = self.population
        signup = pop.signup_day[idx].astype(np.int64)
        return HazardInputs(
            active_users_sum7=self._active_users.sums[7][idx],
            active_users_sum30=self._active_users.sums[WINDOW_DAYS][idx],
            observed_days=day.index - np.maximum(signup, 0) + 1,
            usage_rows_30d=self._usage_rows.sums[WINDOW_DAYS][idx],
            features_used_sum30=self._features_used.sums[WINDOW_DAYS][idx],
            failed_payments_30d=self._failed_payments.counts[idx],
            severe_tickets_30d=self._severe_tickets.counts[idx],
            low_csat_30d=self._low_csat.counts[idx],
            price_per_seat=pop.monthly_price[idx] / pop.seats[idx],
            plan=pop.plan[idx],
            seats=pop.seats[idx],
            tenure_days=day.index - signup,
        )
