"""A simulated source system: drops each day's files into the landing folder.

Only simulated sources (``source.simulator`` in their spec, ``SCOREHOUSE_SIMULATE`` on) have
this asset; a real source's jobs read whatever files it dropped into the landing folder,
exactly as they read these.
"""

from dagster import AssetExecutionContext, AssetsDefinition, MaterializeResult, asset

from lakehouse.sources.saas import simulate
from models.usecase.spec import SourceSpec
from orchestration.partitions import partition_days, source_partitions
from orchestration.resources import LandingResource, SimulatorResource


def landing_key(source: SourceSpec) -> list[str]:
    return ["sources", f"{source.name}_landing"]


def simulated_landing(source: SourceSpec) -> AssetsDefinition:
    """The asset writing a simulated source's landing files for the run's days."""
    if source.simulator != "saas":
        raise ValueError(f"source {source.name}: no simulator {source.simulator!r}")

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
        first, last = days[0], days[-1]
        cfg = simulator.config(last, landing.get())  # the recorded world, if there is one
        result = simulate(
            cfg,
            landing.get(),
            first_day=(first - cfg.start_date).days,
            last_day=(last - cfg.start_date).days,
            progress=lambda day: context.log.info(f"simulated {day}"),
        )
        return MaterializeResult(
            metadata={
                "days_written": len(days),
                "files_written": result.files_written,
                **{f"rows/{feed}": rows for feed, rows in sorted(result.rows.items())},
            }
        )

    return _landing
