"""Small generated data sets for the bring-your-own-data paths (not real data, a known signal).

* ``telco_snapshot``: one row per subscriber, a ``churn`` Yes/No target whose probability rises
  with month-to-month contracts, support calls and charges and falls with tenure.
* ``shop_events``: card transactions of shoppers; a share of them slows down and stops buying,
  so the recent windows predict "no purchase in the next 30 days".
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

CONTRACTS = ("month_to_month", "one_year", "two_year")


def telco_snapshot(path: Path, rows: int = 3000, seed: int = 0) -> Path:
    """Write the snapshot CSV to ``path``; returns it."""
    rng = np.random.default_rng(seed)
    contract = rng.choice(len(CONTRACTS), rows, p=[0.55, 0.25, 0.20])
    tenure = rng.integers(1, 72, rows)
    charges = np.round(rng.uniform(20, 120, rows), 2)
    calls = rng.poisson(1.2, rows)
    paperless = rng.choice(["yes", "no"], rows)
    logit = (
        -1.2
        + 1.6 * (contract == 0)
        - 0.7 * (contract == 2)
        - 0.035 * tenure
        + 0.45 * calls
        + 0.012 * (charges - 70)
    )
    churn = rng.random(rows) < 1 / (1 + np.exp(-logit))
    frame = pl.DataFrame(
        {
            "customer_id": [f"T{i:05d}" for i in range(rows)],
            "tenure_months": tenure,
            "monthly_charges": charges,
            "contract": np.array(CONTRACTS)[contract],
            "support_calls": calls,
            "paperless": paperless,
            "churn": np.where(churn, "Yes", "No"),
        }
    )
    frame.write_csv(path)
    return path


def shop_events(
    path: Path, shoppers: int = 500, days: int = 180, seed: int = 0, start: date = date(2025, 1, 1)
) -> Path:
    """Write the transactions CSV (ISO-8601 UTC timestamps) to ``path``; returns it."""
    rng = np.random.default_rng(seed)
    base = rng.gamma(2.0, 0.15, shoppers)  # purchases per day
    stops = rng.random(shoppers) < 0.5
    stop_day = np.where(stops, rng.integers(20, days, shoppers), days + 1)
    rows: list[tuple[str, str, datetime, float]] = []
    counter = 0
    for shopper in range(shoppers):
        for day in range(days):
            # Slowing down over the 30 days before stopping: the signal the windows see.
            fade = np.clip((stop_day[shopper] - day) / 30, 0, 1) if stops[shopper] else 1.0
            if day >= stop_day[shopper]:
                break
            for _ in range(rng.poisson(base[shopper] * fade)):
                counter += 1
                moment = datetime.combine(start + timedelta(days=day), datetime.min.time(), UTC)
                moment += timedelta(seconds=int(rng.integers(0, 86_400)))
                amount = float(np.round(rng.gamma(2.0, 20.0), 2))
                rows.append((f"X{counter:07d}", f"S{shopper:04d}", moment, amount))
    frame = pl.DataFrame(
        rows,
        schema={
            "transaction_id": pl.String,
            "shopper_id": pl.String,
            "purchased_at": pl.Datetime("us", "UTC"),
            "amount": pl.Float64,
        },
        orient="row",
    ).sort("purchased_at")
    frame.with_columns(pl.col("purchased_at").dt.strftime("%Y-%m-%dT%H:%M:%SZ")).write_csv(path)
    return path
