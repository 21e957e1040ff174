"""The latent daily cancellation hazard and the truth derived from it.

At the end of simulated day ``t`` every subscribed customer gets

    logit h_t = intercept
              + b_plan[plan]
              + b1 * clip(log((mean7 + 1) / (mean30 + 1)), -2, 1)       # usage decline
              + b_adopt * (adoption30 - 0.4)                            # feature adoption
              + b2 * failed_payments_30d
              + b3 * severe_tickets_30d
              + b4 * low_csat_30d
              + b5 * log(price_per_seat / PLAN_LIST_PRICE[plan])
              + b6 * exp(-tenure_days / 90)
              + b_seats * log(seats)

with, over the *observed* days (days since max(day 0, signup) up to and including ``t``):

* ``mean7`` / ``mean30``: mean daily ``active_users`` over the last 7 / 30 observed days, a day
  without a usage row counting as 0 (before 7 observed days both means cover the same days, so
  the decline term is 0);
* ``adoption30 = (F / features_on_plan + 0.4 * 3) / (R + 3)``: ``F`` = sum of ``features_used``
  and ``R`` = number of usage rows in the last 30 days, ``features_on_plan`` = 8 / 14 / 20 / 24
  for starter / growth / business / enterprise; the 3 pseudo-rows at 0.4 shrink short histories
  toward neutral;
* ``failed_payments_30d``: failed payment attempts with ``attempted_at`` in days ``t-29..t``;
  ``severe_tickets_30d``: high/urgent tickets by ``opened_at``; ``low_csat_30d``: CSAT <= 2 by
  ``resolved_at``;
* ``price_per_seat = monthly_price / seats`` (current profile), against the plan's list price
  before any price drift (12 / 25 / 45 / 70); ``tenure_days = t - signup_date``.

Everything is observable in the landing files. Usage volume enters only relative to the
customer's own past, so a global ``usage_shift`` raises the hazard only until the 30-day mean has
caught up (about a month); feature breadth is not scaled by usage drift.

The customer cancels on day ``t + 1`` with probability ``h_t`` (one Bernoulli draw per day, the
only outcome randomness). The truth table reports ``daily_hazard = h_t`` and
``churn_probability_30d = 1 - (1 - h_t) ** 30``: the probability of cancelling within days
``t+1..t+30`` if today's hazard persisted (the covariates keep evolving, so this is the best
point-in-time value, not an average over future paths).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lakehouse.sources.rng import choice_rows
from lakehouse.sources.saas.constants import PLAN_FEATURES, PLAN_LIST_PRICE

HORIZON_DAYS = 30
ADOPTION_PRIOR = 0.4  # neutral feature adoption, and the value short histories shrink toward
ADOPTION_PRIOR_ROWS = 3.0
DRIVERS = ("low_usage", "payment_failed", "support_experience", "too_expensive")
"""Cancel reasons attributable to a hazard term, in ``CANCEL_REASONS`` order; 'other' follows."""


@dataclass(frozen=True)
class HazardCoefficients:
    """Coefficients of the daily cancellation hazard (logit scale); see the module docstring."""

    intercept: float = -8.0
    usage_decline: float = -3.0
    feature_adoption: float = -10.0
    failed_payments: float = 1.0
    severe_tickets: float = 0.6
    low_csat: float = 0.9
    price: float = 2.0
    new_customer: float = 1.2
    new_customer_days: float = 90.0
    seats: float = -0.12
    plan: tuple[float, float, float, float] = (0.35, 0.0, -0.3, -0.6)


@dataclass(frozen=True)
class HazardInputs:
    """Observable per-customer quantities at the end of a day (1-d arrays of equal length)."""

    active_users_sum7: np.ndarray
    active_users_sum30: np.ndarray
    observed_days: np.ndarray
    usage_rows_30d: np.ndarray
    features_used_sum30: np.ndarray
    failed_payments_30d: np.ndarray
    severe_tickets_30d: np.ndarray
    low_csat_30d: np.ndarray
    price_per_seat: np.ndarray
    plan: np.ndarray
    seats: np.ndarray
    tenure_days: np.ndarray


@dataclass(frozen=True)
class Hazard:
    """Daily hazard per customer plus the logit terms behind each attributable cancel reason."""

    daily: np.ndarray
    terms: tuple[np.ndarray, ...]  # logit contributions in ``DRIVERS`` order

    @property
    def churn_probability_30d(self) -> np.ndarray:
        """P(cancel within the next 30 days) if today's hazard persisted."""
        return -np.expm1(HORIZON_DAYS * np.log1p(-self.daily))

    def drivers(self, positions: np.ndarray) -> np.ndarray:
        """Excess odds ``max(exp(term) - 1, 0)`` per driver, shape ``(len(positions), 4)``."""
        terms = np.stack([term[positions] for term in self.terms], axis=1)
        return np.maximum(np.expm1(terms), 0.0)


def compute_hazard(x: HazardInputs, coef: HazardCoefficients) -> Hazard:
    """Evaluate the hazard formula of the module docstring for every customer in ``x``."""
    mean7 = x.active_users_sum7 / np.clip(x.observed_days, 1, 7)
    mean30 = x.active_users_sum30 / np.clip(x.observed_days, 1, 30)
    decline = np.clip(np.log((mean7 + 1.0) / (mean30 + 1.0)), -2.0, 1.0)
    adoption = (
        x.features_used_sum30 / PLAN_FEATURES[x.plan] + ADOPTION_PRIOR * ADOPTION_PRIOR_ROWS
    ) / (x.usage_rows_30d + ADOPTION_PRIOR_ROWS)

    usage = coef.usage_decline * decline + coef.feature_adoption * (adoption - ADOPTION_PRIOR)
    payments = coef.failed_payments * x.failed_payments_30d
    support = coef.severe_tickets * x.severe_tickets_30d + coef.low_csat * x.low_csat_30d
    price = coef.price * np.log(x.price_per_seat / PLAN_LIST_PRICE[x.plan])
    logit = (
        coef.intercept
        + np.asarray(coef.plan)[x.plan]
        + coef.new_customer * np.exp(-x.tenure_days / coef.new_customer_days)
        + coef.seats * np.log(x.seats)
        + usage
        + payments
        + support
        + price
    )
    return Hazard(daily=1.0 / (1.0 + np.exp(-logit)), terms=(usage, payments, support, price))


def with_odds(hazard: Hazard, multiplier: np.ndarray) -> Hazard:
    """``hazard`` with each customer's daily odds multiplied by ``multiplier`` (a ``churn_risk``
    drift). The attributable terms are unchanged: the extra odds count as 'other' reasons."""
    if np.all(multiplier == 1.0):
        return hazard
    odds = hazard.daily / (1.0 - hazard.daily) * multiplier
    return Hazard(daily=odds / (1.0 + odds), terms=hazard.terms)


def cancel_reason_codes(rng: np.random.Generator, drivers: np.ndarray) -> np.ndarray:
    """Sample a cancel reason per cancelling customer, proportional to each term's excess odds.

    Weights are ``max(exp(term) - 1, 0)`` per driver and 1 for 'other' (the baseline hazard), so
    a customer whose failed payments tripled the odds reports 'payment_failed' 2 times in 3.
    Codes index ``lakehouse.sources.saas.contract.CANCEL_REASONS``.
    """
    return choice_rows(rng, np.concatenate([drivers, np.ones((len(drivers), 1))], axis=1))
