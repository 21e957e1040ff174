"""Configuration of a simulation run: world size, calendar, seed, drift and file formats."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any, Literal

from lakehouse.sources.contract import FILE_FORMATS, FileFormat
from lakehouse.sources.saas.contract import CHANNELS, INDUSTRIES, PLANS, REGIONS, SAAS_FEEDS
from lakehouse.sources.saas.hazard import HazardCoefficients

DriftKind = Literal["usage_shift", "price_change", "churn_risk"]
DRIFT_KINDS: tuple[DriftKind, ...] = ("usage_shift", "price_change", "churn_risk")

SEGMENT_VOCABULARIES: dict[str, tuple[str, ...]] = {
    "plan": PLANS,
    "region": REGIONS,
    "industry": INDUSTRIES,
    "acquisition_channel": CHANNELS,
}
"""Customer attributes a drift may be restricted to, with their allowed values."""


@dataclass(frozen=True)
class DriftInjection:
    """A change in the world from ``start`` on (inclusive, permanent).

    * ``usage_shift``: every usage metric of the affected customers is multiplied by
      ``1 + magnitude`` (a product change; the latent engagement is untouched).
    * ``price_change``: list prices per seat of the affected customers are multiplied by
      ``1 + magnitude`` for every invoice from ``start`` (existing customers included).
    * ``churn_risk`` (a concept shift): the daily cancellation odds of the affected customers
      are multiplied by ``1 + magnitude`` from ``start`` (e.g. a competitor's offer to one
      segment). Nothing in the landing files changes, only the outcomes: a model trained
      before ``start`` keeps scoring the same inputs the same way and loses accuracy, which
      only matured labels can show; a model trained on later outcomes can learn it.

    ``segment`` restricts the drift to customers whose attributes match every entry, e.g.
    ``{"plan": "starter"}``; ``None`` affects all customers.
    """

    kind: DriftKind
    start: date
    magnitude: float
    segment: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        if self.kind not in DRIFT_KINDS:
            raise ValueError(f"drift kind {self.kind!r} not in {DRIFT_KINDS}")
        if not self.magnitude > -1.0:
            raise ValueError(f"drift magnitude must be > -1, got {self.magnitude}")
        for column, value in (self.segment or {}).items():
            if value not in SEGMENT_VOCABULARIES.get(column, ()):
                raise ValueError(f"drift segment {column}={value!r} is not a known value")


@dataclass(frozen=True)
class SimulationConfig:
    """Everything that determines a simulated world; same config -> byte-identical files.

    ``customers`` exist at ``start_date``; new signups then arrive each day as a Poisson count with
    mean ``signup_rate * customers`` (times a weekday factor: 1.2 Mon-Fri, 0.5 Sat-Sun).
    ``formats`` overrides the contract's file format per source, e.g. ``{"usage": "csv"}``.
    """

    customers: int = 2000
    start_date: date = date(2025, 1, 1)
    days: int = 180
    seed: int = 7
    drift: Sequence[DriftInjection] = ()
    formats: Mapping[str, str] | None = None
    signup_rate: float = 0.0015
    hazard: HazardCoefficients = field(default_factory=HazardCoefficients)

    def __post_init__(self) -> None:
        if self.customers < 1 or self.days < 1:
            raise ValueError("customers and days must be positive")
        if self.seed < 0:
            raise ValueError("seed must be a non-negative integer")
        if self.signup_rate < 0:
            raise ValueError("signup_rate must be >= 0")
        object.__setattr__(self, "drift", tuple(self.drift))
        formats = dict(self.formats or {})
        for source, fmt in formats.items():
            if source not in SAAS_FEEDS or fmt not in FILE_FORMATS:
                raise ValueError(f"bad format override {source}={fmt!r}")
        object.__setattr__(self, "formats", formats)

    def file_format(self, source: str) -> FileFormat:
        """The format written for ``source``: the override if any, else the contract's."""
        fmt = (self.formats or {}).get(source, SAAS_FEEDS[source].file_format)
        return fmt  # type: ignore[return-value]  # validated in __post_init__

    def date_of(self, day: int) -> date:
        """Calendar date of simulation day ``day`` (day 0 is ``start_date``)."""
        return self.start_date + timedelta(days=day)

    @property
    def end_date(self) -> date:
        """Last simulated date (inclusive)."""
        return self.date_of(self.days - 1)

    def identity(self) -> dict[str, Any]:
        """What determines the world, JSON-ready; ``days`` is not part of it (the files of a
        day are the same whatever range is simulated)."""
        return {
            "customers": self.customers,
            "start_date": self.start_date.isoformat(),
            "seed": self.seed,
            "drift": [
                {
                    "kind": d.kind,
                    "start": d.start.isoformat(),
                    "magnitude": d.magnitude,
                    "segment": dict(d.segment) if d.segment else None,
                }
                for d in self.drift
            ],
            "formats": dict(sorted((self.formats or {}).items())),
            "signup_rate": self.signup_rate,
            "hazard": {
                k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self.hazard).items()
            },
        }

    @classmethod
    def from_identity(cls, identity: Mapping[str, Any], days: int) -> SimulationConfig:
        """The config of a recorded world (``identity``), simulated for ``days`` days."""
        hazard: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in identity["hazard"].items()
        }
        return cls(
            customers=identity["customers"],
            start_date=date.fromisoformat(identity["start_date"]),
            days=days,
            seed=identity["seed"],
            drift=[
                DriftInjection(
                    d["kind"], date.fromisoformat(d["start"]), d["magnitude"], d["segment"]
                )
                for d in identity["drift"]
            ],
            formats=identity["formats"],
            signup_rate=identity["signup_rate"],
            hazard=HazardCoefficients(**hazard),
        )
