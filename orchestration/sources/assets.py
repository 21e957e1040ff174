"""The simulated SaaS source system: drops each day's files into the landing folder.

With real sources, this asset is simply not materialized: ingestion reads whatever files a
source system dropped into the landing folder, exactly as it reads these.
"""

from datetime import date

from dagster import AssetExecutionContext, BackfillPolicy, MaterializeResult, asset

from lakehouse.simulator import simulate
from orchestration.partitions import daily_partitions
from orchestration.resources import LandingResource, SimulatorResource


@asset(
    key=["sources", "simulated_landing"],
    group_name="sources",
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    description="Simulated SaaS source files for the day(s), written to the landing folder.",
    kinds={"python", "parquet"},
)
def simulated_landing(
    context: AssetExecutionContext, landing: LandingResource, simulator: SimulatorResource
) -> MaterializeResult:
    days = [date.fromisoformat(key) for key in context.partition_keys]
    first, last = min(days), max(days)
    cfg = simulator.config(last)
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
            **{f"rows/{source}": rows for source, rows in sorted(result.rows.items())},
        }
    )
