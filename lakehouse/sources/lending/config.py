"""Configuration of a lending world: book size, calendar, seed, the economic shock, formats."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any

from lakehouse.sources.contract import FILE_FORMATS, FileFormat
from lakehouse.sources.lending.contract import LENDING_FEEDS
from lakehouse.sources.lending.hazard import HazardCoefficients


@dataclass(frozen=True)
class Economy:
    """A macro regime: published rates in percent."""

    unemployment_rate: float = 4.0
    base_rate: float = 3.0


@dataclass(frozen=True)
class EconomicShock:
    """A downturn from simulation day ``day`` on (inclusive, permanent).

    * the published regime becomes ``economy`` (unemployment up, base rate up: new loans are
      priced higher);
    * covariate shift: new applicants' incomes are ``income_factor`` times lower; on the shock
      day a share ``job_loss_share`` of existing borrowers lose income (× ``job_loss_income``)
      and everyone else's falls by ``existing_income_factor``; every borrower's long-run
      revolving utilisation rises by ``utilization_shift`` (reached gradually, month by month);
    * concept shift: the debt-to-income coefficient of the default hazard is multiplied by
      ``dti_effect`` (a stretched budget matters more when jobs are scarce).
    """

    day: int = 540
    economy: Economy = field(default_factory=lambda: Economy(unemployment_rate=8.0, base_rate=5.5))
    income_factor: float = 0.85
    job_loss_share: float = 0.08
    job_loss_income: float = 0.55
    existing_income_factor: float = 0.96
    utilization_shift: float = 0.12
    dti_effect: float = 2.0

    def __post_init__(self) -> None:
        if self.day < 1:
            raise ValueError(f"shock day must be >= 1 (day 0 is the start), got {self.day}")
        factors = (self.income_factor, self.job_loss_income, self.existing_income_factor)
        if min(factors) <= 0 or not 0 <= self.job_loss_share <= 1 or self.dti_effect < 0:
            raise ValueError(
                "income factors must be > 0, job_loss_share in [0, 1], dti_effect >= 0"
            )


@dataclass(frozen=True)
class LendingConfig:
    """Everything that determines a lending world; same config -> byte-identical files.

    ``loans`` are open on ``start_date`` (a seasoned book); new loans are then booked each day
    as a Poisson count with mean ``origination_rate * loans`` (× a weekday factor), which keeps
    the book roughly stable. The default world runs 3 years with the shock after 18 months:
    12-month default labels then mature for as-of dates up to 6 months past the shock (see
    docs/lending.md). ``formats`` overrides a feed's file format, e.g. ``{"repayments": "csv"}``.
    """

    loans: int = 5000
    start_date: date = date(2025, 1, 1)
    days: int = 1095
    seed: int = 7
    shock: EconomicShock | None = field(default_factory=EconomicShock)
    economy: Economy = field(default_factory=Economy)
    origination_rate: float = 0.0011
    formats: Mapping[str, str] | None = None
    hazard: HazardCoefficients = field(default_factory=HazardCoefficients)

    def __post_init__(self) -> None:
        if self.loans < 1 or self.days < 1:
            raise ValueError("loans and days must be positive")
        if self.seed < 0:
            raise ValueError("seed must be a non-negative integer")
        if self.origination_rate < 0:
            raise ValueError("origination_rate must be >= 0")
        formats = dict(self.formats or {})
        for feed, fmt in formats.items():
            if feed not in LENDING_FEEDS or fmt not in FILE_FORMATS:
                raise ValueError(f"bad format override {feed}={fmt!r}")
        object.__setattr__(self, "formats", formats)

    def identity(self) -> dict[str, Any]:
        """What determines the world, JSON-ready; ``days`` is not part of it (the files of a
        day are the same whatever range is simulated)."""
        return {
            "loans": self.loans,
            "start_date": self.start_date.isoformat(),
            "seed": self.seed,
            "shock": None if self.shock is None else asdict(self.shock),
            "economy": asdict(self.economy),
            "origination_rate": self.origination_rate,
            "formats": dict(sorted((self.formats or {}).items())),
            "hazard": {
                k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self.hazard).items()
            },
        }

    @classmethod
    def from_identity(cls, identity: Mapping[str, Any], days: int) -> LendingConfig:
        """The config of a recorded world (``identity``), simulated for ``days`` days."""
        shock = identity["shock"]
        hazard: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in identity["hazard"].items()
        }
        return cls(
            loans=identity["loans"],
            start_date=date.fromisoformat(identity["start_date"]),
            days=days,
            seed=identity["seed"],
            shock=None
            if shock is None
            else EconomicShock(**{**shock, "economy": Economy(**shock["economy"])}),
            economy=Economy(**identity["economy"]),
            origination_rate=identity["origination_rate"],
            formats=identity["formats"],
            hazard=HazardCoefficients(**hazard),
        )

    def file_format(self, feed: str) -> FileFormat:
        """The format written for ``feed``: the override if any, else the contract's."""
        fmt = (self.formats or {}).get(feed, LENDING_FEEDS[feed].file_format)
        return fmt  # type: ignore[return-value]  # validated in __post_init__

    def date_of(self, day: int) -> date:
        """Calendar date of simulation day ``day`` (day 0 is ``start_date``)."""
        return self.start_date + timedelta(days=day)

    @property
    def end_date(self) -> date:
        """Last simulated date (inclusive)."""
        return self.date_of(self.days - 1)

    def shocked(self, day: int) -> bool:
        """Whether the shock is in force on simulation day ``day``."""
        return self.shock is not None and day >= self.shock.day

    def economy_on(self, day: int) -> Economy:
        """The published regime on ``day``."""
        return self.shock.economy if self.shock is not None and self.shocked(day) else self.economy
