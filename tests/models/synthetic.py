"""A synthetic churn training set with a real signal, for training tests and the benchmark.

Churn probability depends on the usage trend, failed payments, severe tickets, plan and seats
(logistic); each (customer, as-of) row draws its label from it. ``truth`` holds that probability
the way the simulator writes it (``as_of_date`` = the day before the label as-of), and
``customers`` the ``silver.customers`` rows (signup dates) the leakage check joins.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl

from lakehouse.ingest.saas import SILVER_CUSTOMERS
from lakehouse.sources.saas.contract import CHANNELS, INDUSTRIES, PLANS, REGIONS
from models.usecase import load_use_cases

CHURN = load_use_cases()["churn"]
TRAINING_SET = CHURN.table_spec(CHURN.tables.training_set)

START = date(2025, 1, 2)
PLAN_EFFECT = np.array([0.4, 0.0, -0.3, -0.6])


@dataclass(frozen=True)
class SyntheticData:
    training_set: pl.DataFrame
    truth: pl.DataFrame
    customers: pl.DataFrame


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def synthetic_training_set(
    customers: int = 300, days: int = 120, seed: int = 0, start: date = START
) -> SyntheticData:
    """``customers × days`` training rows (as-of dates ``start … start + days − 1``)."""
    rng = np.random.default_rng(seed)
    n = customers * days
    cust = np.repeat(np.arange(customers), days)
    day = np.tile(np.arange(days), customers)
    signup_offset = rng.integers(30, 700, customers)  # days before ``start``
    plan = rng.integers(0, len(PLANS), customers)
    seats = rng.integers(1, 60, customers)
    engagement = rng.normal(size=customers)

    trend = np.exp(rng.normal(0.0, 0.35, n) + 0.15 * engagement[cust])
    failed = rng.poisson(0.12 + 0.25 * (engagement[cust] < -1.0))
    severe = rng.poisson(0.08, n)
    logit = (
        -3.7
        - 2.5 * np.log(trend)
        + 0.9 * failed
        + 0.5 * severe
        + PLAN_EFFECT[plan[cust]]
        - 0.15 * np.log(seats[cust])
    )
    probability = _sigmoid(logit)
    label = (rng.random(n) < probability).astype(np.int64)

    users30 = np.maximum(0.0, seats[cust] * 0.6 * np.exp(0.3 * engagement[cust]))
    users7 = users30 * trend
    price = np.array([12.0, 25.0, 45.0, 70.0])[plan[cust]]
    as_of = pl.Series("as_of_date", [start + timedelta(days=int(d)) for d in range(days)])
    as_of = as_of.gather(day)
    csat = np.where(rng.random(n) < 0.3, rng.integers(1, 6, n).astype(float), np.nan)
    resolved = rng.poisson(0.4, n)
    payment_attempts = rng.poisson(3.0, n) + failed
    frame = pl.DataFrame(
        {
            "customer_id": [f"c{c:06d}" for c in cust],
            "as_of_date": as_of,
            "churned_30d": label,
            "active_users_7d_mean": users7,
            "active_users_30d_mean": users30,
            "active_users_90d_mean": users30 * np.exp(rng.normal(0, 0.1, n)),
            "sessions_7d_sum": rng.poisson(users7 * 7),
            "sessions_30d_sum": rng.poisson(users30 * 30),
            "events_30d_sum": rng.poisson(users30 * 300),
            "minutes_7d_sum": users7 * 7 * 20.0,
            "minutes_30d_sum": users30 * 30 * 20.0,
            "features_used_30d_mean": rng.uniform(0, 12, n),
            "active_days_30d": rng.integers(0, 31, n),
            "usage_trend_7d_30d": np.where(rng.random(n) < 0.02, np.nan, trend),
            "usage_trend_30d_90d": np.exp(rng.normal(0, 0.2, n)),
            "days_since_last_active": rng.integers(0, 10, n),
            "mrr": price * seats[cust],
            "discount_pct": rng.choice([0.0, 5.0, 10.0, 20.0], n),
            "failed_payments_30d": failed,
            "failed_payments_90d": failed + rng.poisson(0.2, n),
            "payment_attempts_90d": payment_attempts,
            "invoices_90d": np.full(n, 3),
            "invoiced_amount_90d": price * seats[cust] * 3,
            "plan_changes_90d": rng.poisson(0.05, n),
            "seat_changes_90d": rng.poisson(0.1, n),
            "tickets_30d": severe + rng.poisson(0.3, n),
            "tickets_90d": severe + rng.poisson(0.9, n),
            "high_severity_tickets_30d": severe,
            "tickets_resolved_90d": resolved,
            "resolution_hours_90d_mean": np.where(resolved > 0, rng.gamma(2.0, 10.0, n), np.nan),
            "last_csat_90d": csat,
            "tenure_days": signup_offset[cust] + day - 1,  # features of day A − 1
            "plan": np.array(PLANS)[plan[cust]],
            "seats": seats[cust],
            "price_per_seat": price,
            "region": np.array(REGIONS)[rng.integers(0, len(REGIONS), customers)][cust],
            "industry": np.array(INDUSTRIES)[rng.integers(0, len(INDUSTRIES), customers)][cust],
            "acquisition_channel": np.array(CHANNELS)[rng.integers(0, len(CHANNELS), customers)][
                cust
            ],
            "failed_payment_rate_90d": failed / np.maximum(payment_attempts, 1),
            "tickets_per_seat_30d": severe / seats[cust],
        },
        nan_to_null=True,
    ).with_columns(
        pl.col("as_of_date").cast(pl.Datetime("us", "UTC")).alias("event_timestamp"),
    )
    frame = frame.select([pl.col(c).cast(t) for c, t in TRAINING_SET.schema.items()])
    truth = frame.select(
        "customer_id", (pl.col("as_of_date") - pl.duration(days=1)).alias("as_of_date")
    ).with_columns(pl.Series("churn_probability_30d", probability))
    return SyntheticData(frame, truth, _customers(customers, signup_offset, plan, seats, start))


def _customers(
    count: int, signup_offset: np.ndarray, plan: np.ndarray, seats: np.ndarray, start: date
) -> pl.DataFrame:
    """``silver.customers`` rows matching the training set's signups."""
    signup = [start - timedelta(days=int(o)) for o in signup_offset]
    return pl.DataFrame(
        {
            "customer_id": [f"c{c:06d}" for c in range(count)],
            "signup_date": signup,
            "plan": np.array(PLANS)[plan],
            "seats": seats.astype(np.int64),
            "region": [REGIONS[0]] * count,
            "industry": [INDUSTRIES[0]] * count,
            "acquisition_channel": [CHANNELS[0]] * count,
            "monthly_price": np.full(count, 100.0),
            "discount_pct": np.zeros(count),
            "updated_at": [datetime(s.year, s.month, s.day, tzinfo=UTC) for s in signup],
            "_batch_id": ["synthetic"] * count,
        }
    ).select([pl.col(c).cast(t) for c, t in SILVER_CUSTOMERS.schema.items()])
