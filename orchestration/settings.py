"""Settings read from the environment at definition load (Dagster needs static partitions)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, timedelta

from models.usecase.spec import SourceSpec


@dataclass(frozen=True)
class WorldSettings:
    """The simulated world the demo and the ``sources`` assets produce.

    ``SCOREHOUSE_START_DATE`` is also the first daily partition of every partitioned asset (of
    the lending source's: ``SCOREHOUSE_SIM_LENDING_START_DATE`` when set).
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
    simulate: bool = True
    """``SCOREHOUSE_SIMULATE=0``: built-in sources are real (their jobs never simulate)."""
    concept_day: int | None = None
    """Day of the concept shift (``churn_risk`` drift), or None; ``SCOREHOUSE_SIM_CONCEPT_DAY``."""
    churn_risk: float = 4.0
    """Cancellation odds × (1 + this) from the concept day; ``SCOREHOUSE_SIM_CHURN_RISK``."""
    churn_risk_segment: str = "region=EMEA"
    """Who the concept shift affects (``column=value``); ``SCOREHOUSE_SIM_CHURN_RISK_SEGMENT``."""
    loans: int = 2000
    """Open loans of the lending world on the start date; ``SCOREHOUSE_SIM_LOANS``."""
    shock_day: int | None = 540
    """Day of the lending world's economic shock (None: none); ``SCOREHOUSE_SIM_SHOCK_DAY``
    (``none`` for no shock)."""
    lending_days: int | None = None
    """Days of the lending world when it differs from the SaaS world's (12-month outcomes need
    a longer one); ``SCOREHOUSE_SIM_LENDING_DAYS``, default ``days``."""
    lending_start_date: date | None = None
    """First day of the lending world when it differs (a long world must end before today:
    Dagster makes no future partitions); ``SCOREHOUSE_SIM_LENDING_START_DATE``, default
    ``start_date``."""

    @property
    def end_date(self) -> date:
        """The SaaS world's last day."""
        return self.start_date + timedelta(days=self.days - 1)

    def days_of(self, simulator: str) -> int:
        """Days simulated by ``simulator`` (``saas`` or ``lending``)."""
        return (self.lending_days or self.days) if simulator == "lending" else self.days

    def start_of(self, simulator: str) -> date:
        """The first day of ``simulator``'s world (its first daily partition)."""
        if simulator == "lending" and self.lending_start_date is not None:
            return self.lending_start_date
        return self.start_date

    def end_of(self, simulator: str) -> date:
        """The last day of ``simulator``'s world (its last daily partition)."""
        return self.start_of(simulator) + timedelta(days=self.days_of(simulator) - 1)

    @classmethod
    def from_env(cls) -> WorldSettings:
        drift_day = os.environ.get("SCOREHOUSE_SIM_DRIFT_DAY", "")
        shock_day = os.environ.get("SCOREHOUSE_SIM_SHOCK_DAY", "540").strip().lower()
        return cls(
            start_date=date.fromisoformat(os.environ.get("SCOREHOUSE_START_DATE", "2025-01-01")),
            customers=int(os.environ.get("SCOREHOUSE_SIM_CUSTOMERS", "2000")),
            days=int(os.environ.get("SCOREHOUSE_SIM_DAYS", "200")),
            seed=int(os.environ.get("SCOREHOUSE_SIM_SEED", "7")),
            drift_day=int(drift_day) if drift_day else None,
            usage_shift=float(os.environ.get("SCOREHOUSE_SIM_USAGE_SHIFT", "-0.35")),
            price_change=float(os.environ.get("SCOREHOUSE_SIM_PRICE_CHANGE", "0.0")),
            simulate=os.environ.get("SCOREHOUSE_SIMULATE", "1") not in ("0", "false", "no"),
            concept_day=int(concept)
            if (concept := os.environ.get("SCOREHOUSE_SIM_CONCEPT_DAY"))
            else None,
            churn_risk=float(os.environ.get("SCOREHOUSE_SIM_CHURN_RISK", "4.0")),
            churn_risk_segment=os.environ.get("SCOREHOUSE_SIM_CHURN_RISK_SEGMENT", "region=EMEA"),
            loans=int(os.environ.get("SCOREHOUSE_SIM_LOANS", "2000")),
            shock_day=None if shock_day in ("", "none") else int(shock_day),
            lending_days=int(lending)
            if (lending := os.environ.get("SCOREHOUSE_SIM_LENDING_DAYS"))
            else None,
            lending_start_date=date.fromisoformat(first)
            if (first := os.environ.get("SCOREHOUSE_SIM_LENDING_START_DATE"))
            else None,
        )


WORLD = WorldSettings.from_env()


def first_day(source: SourceSpec) -> date:
    """The first landing day of a source: its world's start, its spec's, or the setting's."""
    if source.simulator is not None and WORLD.simulate:
        return WORLD.start_of(source.simulator)
    return source.start_date or WORLD.start_date
