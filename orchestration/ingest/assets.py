"""Ingest domain: landing files → ``bronze.*`` → ``silver.*``, one daily partition at a time.

Bronze assets validate each landing file against its feed's contract and replace the days'
partitions (idempotent: re-running a day never duplicates rows). Silver assets deduplicate the
days' bronze rows and merge them on the table's primary key. One asset per table of a source
system, shared by every use case built on it.
"""

import polars as pl
from dagster import AssetExecutionContext, AssetKey, AssetsDefinition, MaterializeResult, asset

from lakehouse.ingest.delivery import check_delivery
from lakehouse.ingest.reader import read_batch
from lakehouse.ingest.tables import SilverFlow, bronze_spec
from lakehouse.sources.contract import LandingSource
from models.usecase.spec import SourceSpec
from orchestration.metadata import table_key, table_metadata
from orchestration.partitions import commit_info, day_chunks, partition_days, source_partitions
from orchestration.resources import LakehouseResource, LandingResource
from orchestration.sources.assets import landing_key

# Landing days per commit (bronze replace, silver merge): bounded memory on long backfills,
# few commits on short ones.
DAYS_PER_COMMIT = 31


def bronze_asset(source: SourceSpec, feed: LandingSource) -> AssetsDefinition:
    """The bronze asset of one feed."""
    table = bronze_spec(feed).name
    deps = [AssetKey(landing_key(source))] if source.simulator else []

    @asset(
        key=table_key(table),
        group_name=f"{source.name}_bronze",
        partitions_def=source_partitions(source),
        deps=deps,
        description=f"{table}: {feed.description}",
        kinds={"delta", "polars"},
    )
    def _bronze(
        context: AssetExecutionContext, lakehouse: LakehouseResource, landing: LandingResource
    ) -> MaterializeResult:
        lake, folder = lakehouse.get(), landing.get()
        # The source's cross-feed rules, on every feed of the run's days, before any write.
        check_delivery(lake, source.tables, folder, partition_days(context))
        rows = 0
        for days in day_chunks(partition_days(context), DAYS_PER_COMMIT):
            # Every file of the chunk is validated before anything is written.
            frames = [read_batch(folder, feed, day).frame for day in days]
            frame = pl.concat(frames)
            lake.replace(
                table, frame, partition={"_batch_date": days}, commit=commit_info(context, days)
            )
            rows += frame.height
            context.log.info(f"{table} {days[0]}..{days[-1]}: {frame.height} rows")
        return MaterializeResult(metadata={"rows_written": rows, **table_metadata(lake, table)})

    return _bronze


def silver_asset(source: SourceSpec, flow: SilverFlow) -> AssetsDefinition:
    """The silver asset fed by one bronze table."""
    table = flow.silver.name

    @asset(
        key=table_key(table),
        group_name=f"{source.name}_silver",
        partitions_def=source_partitions(source),
        deps=[table_key(flow.bronze)],
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


def source_assets(source: SourceSpec) -> list[AssetsDefinition]:
    """The bronze and silver assets of a source system."""
    return [
        *(bronze_asset(source, feed) for feed in source.tables.feeds.values()),
        *(silver_asset(source, flow) for flow in source.tables.flows.values()),
    ]
