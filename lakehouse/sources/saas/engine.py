"""``simulate``: run a SaaS world from day 0 and write the requested days into a landing folder."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

from lakehouse.sources.engine import SimulationResult, Simulator, write_days
from lakehouse.sources.saas.config import SimulationConfig
from lakehouse.sources.saas.contract import SAAS_FEEDS, truth_path
from lakehouse.sources.saas.world import World

__all__ = ["SimulationResult", "simulate"]

SAAS = Simulator("saas", SAAS_FEEDS, truth_path)


def simulate(
    config: SimulationConfig,
    landing_dir: Path,
    *,
    first_day: int = 0,
    last_day: int | None = None,
    write_truth: bool = True,
    progress: Callable[[date], None] | None = None,
) -> SimulationResult:
    """Simulate days ``0..last_day`` and write days ``first_day..last_day`` (inclusive) to disk.

    The world is always simulated from day 0 in memory, and every day's randomness derives from
    ``(seed, day)``, so the files of any day are identical whatever sub-range is requested.
    Each written day gets one file per landing source (possibly with zero rows) and, with
    ``write_truth``, the evaluation-only truth under ``_evaluation/``. ``progress`` is called
    with each written date. Refuses (``LandingClaimError``) a folder holding files it did not
    write or another recorded world (``lakehouse.sources.claim``).
    """
    return write_days(
        SAAS,
        config,
        lambda: World(config),
        landing_dir,
        first_day=first_day,
        last_day=last_day,
        write_truth=write_truth,
        progress=progress,
    )
