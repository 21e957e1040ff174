"""Settings read from the environment at definition load (Dagster needs static partitions)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class WorldSettings:
    """The simulated world the demo and the ``sources`` assets produce.

    ``SCOREHOUSE_START_DATE`` is also the first daily partition of every partitioned asset.
    """

    start_date: date
    customers: int
    days: int
    seed: int
    drift_day: int | None
    """Day (from the start) of the injected drift, or None; ``SCOREHOUSE_SIM_DRIFT_DAY``."""
    usage_shift: float
    """Product change from the drift day: usage × (1 + this); ``SCOREHOUSE_SIM_USAGE_SHIFT``."""
    price_change: float
    """Price change from the drift day: prices × (1 + this); ``SCOREHOUSE_SIM_PRICE_CHANGE``."""

    @classmethod
    def from_env(cls) -> WorldSettings:
        drift_day = os.environ.get("SCOREHOUSE_SIM_DRIFT_DAY", "")
        return cls(
            start_date=date.fromisoformat(os.environ.get("SCOREHOUSE_START_DATE", "2025-01-01")),
            customers=int(os.environ.get("SCOREHOUSE_SIM_CUSTOMERS", "2000")),
            days=int(os.environ.get("SCOREHOUSE_SIM_DAYS", "200")),
            seed=int(os.environ.get("SCOREHOUSE_SIM_SEED", "7")),
            drift_day=int(drift_day) if drift_day else None,
            usage_shift=float(os.environ.get("SCOREHOUSE_SIM_USAGE_SHIFT", "-0.35")),
            price_change=float(os.environ.get("SCOREHOUSE_SIM_PRICE_CHANGE", "0.0")),
        )


WORLD = WorldSettings.from_env()
