"""Ingest domain: landing files → ``bronze.*`` → ``silver.*``, one daily partition at a time.

Bronze assets validate each landing file against its feed's contract and replace the days'
partitions (idempotent: re-running a day never duplicates rows). Silver assets rebuild every key
the days touch from all of bronze and replace those keys' rows in one commit, so a corrected
re-delivery of a day (rows changed, added or removed) lands in silver exactly as in bronze
(``lakehouse.ingest.tables``). One asset per table of a source system, shared by every use case
built on it.
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

# Landing days per chunk (one silver merge each; bronze stages each chunk's files and commits
# once per run): bounded memory on long backfills, few commits on short ones.
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
        run_days, rows = partition_days(context), 0
        # The source's cross-feed rules, on every feed of the run's days, before any write.
        check_delivery(lake, source.tables, folder, run_days)
        # One commit replaces every day of the run: a bad file on any day leaves the table as
        # it was. Files are written chunk by chunk (memory holds one chunk's rows).
        with lake.staged_replace(
            table, partition={"_batch_date": run_days}, commit=commit_info(context, run_days)
        ) as staged:
            for days in day_chunks(run_days, DAYS_PER_COMMIT):
                # Every file of the chunk is validated before its rows are written.
                frame = pl.concat([read_batch(folder, feed, day).frame for day in days])
                staged.write(frame)
                rows += frame.height
                context.log.info(f"{table} {days[0]}..{days[-1]}: {frame.height} rows staged")
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
        rows = deleted = 0
        for days in day_chunks(partition_days(context), DAYS_PER_COMMIT):
            current = lake.scan(table) if lake.exists(table) else None
            rewrite = flow.rewrite(lake.scan(flow.bronze), current, days)
            lake.replace_keys(table, rewrite.rows, rewrite.keys, commit=commit_info(context, days))
            rows, deleted = rows + rewrite.rows.height, deleted + rewrite.deleted
            context.log.info(
                f"{table}: {rewrite.keys.height} keys from {days[0]}..{days[-1]}: "
                f"{rewrite.rows.height} rows written, {rewrite.deleted} deleted"
            )
        return MaterializeResult(
            metadata={"rows_written": rows, "rows_deleted": deleted, **table_metadata(lake, table)}
        )

    return _silver


def source_assets(source: SourceSpec) -> list[AssetsDefinition]:
    """The bronze and silver assets of a source system."""
    return [
        *(bronze_asset(source, feed) for feed in source.tables.feeds.values()),
        *(silver_asset(source, flow) for flow in source.tables.flows.values()),
    ]
