"""Deterministic simulator of a B2B SaaS customer base writing source files into a landing folder.

See docs/simulator.md for the landing contract, the behavioural model and the churn hazard.

    from lakehouse.sources.saas import SimulationConfig, DriftInjection, simulate
    result = simulate(SimulationConfig(customers=2000, days=180, seed=7), landing_dir)
"""

from lakehouse.sources.saas.config import DriftInjection, SimulationConfig
from lakehouse.sources.saas.engine import SimulationResult, simulate
from lakehouse.sources.saas.hazard import HazardCoefficients
from lakehouse.sources.saas.world import DayOutput, World

__all__ = [
    "DayOutput",
    "DriftInjection",
    "HazardCoefficients",
    "SimulationConfig",
    "SimulationResult",
    "World",
    "simulate",
]
