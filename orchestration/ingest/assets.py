"""Ingest domain: landing files → ``bronze.*`` → ``silver.*``, one daily partition at a time.

Bronze assets validate each landing file against the contract and replace the days' partitions
(idempotent: re-running a day never duplicates rows). Silver assets deduplicate the days' bronze
rows and merge them on the table's primary key. Runs over a range of days are single runs.
"""

import polars as pl
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    BackfillPolicy,
    MaterializeResult,
    asset,
)

from lakehouse.ingest import read_batch
from lakehouse.landing import LANDING_SOURCES, LandingSource
from lakehouse.silver import SILVER_FLOWS, SilverFlow
from orchestration.metadata import table_metadata
from orchestration.partitions import commit_info, daily_partitions, day_chunks, partition_days
from orchestration.resources import LakehouseResource, LandingResource

# Landing days per commit (bronze replace, silver merge): bounded memory on long backfills,
# few commits on short ones.
DAYS_PER_COMMIT = 31


def bronze_asset(source: LandingSource) -> AssetsDefinition:
    """The bronze asset of one landing source."""
    table = f"bronze.{source.name}"

    @asset(
        key=["bronze", source.name],
        group_name="bronze",
        partitions_def=daily_partitions,
        backfill_policy=BackfillPolicy.single_run(),
        deps=[AssetKey(["sources", "simulated_landing"])],
        description=f"{table}: {source.description}",
        kinds={"delta", "polars"},
    )
    def _bronze(
        context: AssetExecutionContext, lakehouse: LakehouseResource, landing: LandingResource
    ) -> MaterializeResult:
        lake, folder = lakehouse.get(), landing.get()
        rows = 0
        for days in day_chunks(partition_days(context), DAYS_PER_COMMIT):
            # Every file of the chunk is validated before anything is written.
            frames = [read_batch(folder, source, day).frame for day in days]
            frame = pl.concat(frames)
            lake.replace(
                table, frame, partition={"_batch_date": days}, commit=commit_info(context, days)
            )
            rows += frame.height
            context.log.info(f"{table} {days[0]}..{days[-1]}: {frame.height} rows")
        return MaterializeResult(metadata={"rows_written": rows, **table_metadata(lake, table)})

    return _bronze


def silver_asset(flow: SilverFlow) -> AssetsDefinition:
    """The silver asset fed by one bronze table."""
    table = flow.silver.name

    @asset(
        key=table.split("."),
        group_name="silver",
        partitions_def=daily_partitions,
        backfill_policy=BackfillPolicy.single_run(),
        deps=[AssetKey(flow.bronze.split("."))],
        description=f"{table}: {flow.silver.description}",
        kinds={"delta", "polars"},
    )
    def _silver(context: AssetExecutionContext, lakehouse: LakehouseResource) -> MaterializeResult:
        lake = lakehouse.get()
        rows = 0
        for days in day_chunks(partition_days(context), DAYS_PER_COMMIT):
            bronze = lake.read(flow.bronze, where=pl.col("_batch_date").is_in(days))
            batch = flow.transform(bronze)
            lake.merge(table, batch, commit=commit_info(context, days))
            rows += batch.height
            context.log.info(f"{table}: merged {batch.height} rows from {days[0]}..{days[-1]}")
        return MaterializeResult(metadata={"rows_merged": rows, **table_metadata(lake, table)})

    return _silver


bronze_assets = [bronze_asset(source) for source in LANDING_SOURCES.values()]
silver_assets = [silver_asset(flow) for flow in SILVER_FLOWS.values()]
