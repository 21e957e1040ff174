"""Deterministic simulator of a consumer lender's loan book writing its feeds into a landing
folder: booked applications, loans, monthly repayments, bureau refreshes, macro indicators.

See docs/lending.md for the landing contract, the payment hazard, the economic shock and the
evaluation-only truth (each open loan's 12-month probability of default).

    from lakehouse.sources.lending import LendingConfig, simulate
    result = simulate(LendingConfig(loans=5000, days=1095, seed=7), landing_dir)
"""

from lakehouse.sources.lending.config import EconomicShock, Economy, LendingConfig
from lakehouse.sources.lending.engine import SimulationResult, simulate
from lakehouse.sources.lending.hazard import HazardCoefficients
from lakehouse.sources.lending.world import DayOutput, World

__all__ = [
    "DayOutput",
    "EconomicShock",
    "Economy",
    "HazardCoefficients",
    "LendingConfig",
    "SimulationResult",
    "World",
    "simulate",
]
