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

    @classmethod
    def from_env(cls) -> WorldSettings:
        return cls(
            start_date=date.fromisoformat(os.environ.get("SCOREHOUSE_START_DATE", "2025-01-01")),
            customers=int(os.environ.get("SCOREHOUSE_SIM_CUSTOMERS", "2000")),
            days=int(os.environ.get("SCOREHOUSE_SIM_DAYS", "150")),
            seed=int(os.environ.get("SCOREHOUSE_SIM_SEED", "7")),
        )


WORLD = WorldSettings.from_env()
