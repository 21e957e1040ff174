"""A simulated source system: drops each day's files into the landing folder.

Only simulated sources (``source.simulator`` in their spec, ``SCOREHOUSE_SIMULATE`` on) have
this asset; a real source's jobs read whatever files it dropped into the landing folder,
exactly as they read these. ``SIMULATORS`` maps a simulator's name to the function that writes
its world's days (every simulator is configured by the one ``SimulatorResource``).
"""

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, Protocol

from dagster import AssetExecutionContext, AssetsDefinition, MaterializeResult, asset

from lakehouse.sources import lending, saas
from models.usecase.spec import SourceSpec
from orchestration.partitions import partition_days, source_partitions
from orchestration.resources import LandingResource, SimulatorResource


class Simulated(Protocol):
    """What a simulator reports about the days it wrote."""

    @property
    def files_written(self) -> int: ...

    @property
    def rows(self) -> dict[str, int]: ...


Simulate = Callable[[SimulatorResource, Path, date, date, Callable[[date], None]], Simulated]


def _days_of(configure: Callable[[SimulatorResource, date, Path], Any], simulate: Any) -> Simulate:
    """A simulator's writer: its world configured for the run (the recorded world, if the
    landing folder holds one), then the run's days written."""

    def write(
        simulator: SimulatorResource,
        folder: Path,
        first: date,
        last: date,
        progress: Callable[[date], None],
    ) -> Simulated:
        cfg = configure(simulator, last, folder)
        return simulate(
            cfg,
            folder,
            first_day=(first - cfg.start_date).days,
            last_day=(last - cfg.start_date).days,
            progress=progress,
        )

    return write


SIMULATORS: dict[str, Simulate] = {
    "saas": _days_of(SimulatorResource.config, saas.simulate),
    "lending": _days_of(SimulatorResource.lending_config, lending.simulate),
}
"""Simulator name (``BuiltinSource.simulator``) → the function writing its days."""


def landing_key(source: SourceSpec) -> list[str]:
    return ["sources", f"{source.name}_landing"]


def simulated_landing(source: SourceSpec) -> AssetsDefinition:
    """The asset writing a simulated source's landing files for the run's days."""
    run = SIMULATORS.get(source.simulator or "")
    if run is None:
        raise ValueError(
            f"source {source.name}: no simulator {source.simulator!r}; known: {sorted(SIMULATORS)}"
        )

    @asset(
        key=landing_key(source),
        group_name=f"{source.name}_sources",
        partitions_def=source_partitions(source),
        description=f"Simulated {source.name} source files for the day(s), in the landing folder.",
        kinds={"python", "parquet"},
    )
    def _landing(
        context: AssetExecutionContext, landing: LandingResource, simulator: SimulatorResource
    ) -> MaterializeResult:
        days = partition_days(context)
        result = run(
            simulator,
            landing.get(),
            days[0],
            days[-1],
            lambda day: context.log.info(f"simulated {day}"),
        )
        return MaterializeResult(
            metadata={
                "days_written": len(days),
                "files_written": result.files_written,
                **{f"rows/{feed}": rows for feed, rows in sorted(result.rows.items())},
            }
        )

    return _landing
