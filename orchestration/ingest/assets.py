"""Ingest domain: landing files → ``bronze.*`` → ``silver.*``, one daily partition at a time.

Bronze assets validate each landing file against the contract and replace the day's partition
(idempotent: re-running a day never duplicates rows). Silver assets deduplicate the days' bronze
rows and merge them on the table's primary key. Runs over a range of days are single runs.
"""

from collections.abc import Iterator
from datetime import date

import polars as pl
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    BackfillPolicy,
    MaterializeResult,
    asset,
)

from lakehouse.commit import CommitInfo
from lakehouse.ingest import read_batch
from lakehouse.landing import LANDING_SOURCES, LandingSource
from lakehouse.silver import SILVER_FLOWS, SilverFlow
from orchestration.metadata import table_metadata
from orchestration.partitions import daily_partitions
from orchestration.resources import LakehouseResource, LandingResource

# Silver merges this many landing days per commit: bounded memory on long backfills,
# few commits on short ones.
SILVER_DAYS_PER_COMMIT = 31


def _days(context: AssetExecutionContext) -> list[date]:
    return sorted(date.fromisoformat(key) for key in context.partition_keys)


def _commit(context: AssetExecutionContext, day: date | None = None) -> CommitInfo:
    keys = context.partition_keys
    partition = (
        day.isoformat() if day else (keys[0] if len(keys) == 1 else f"{keys[0]}..{keys[-1]}")
    )
    return CommitInfo(
        run_id=context.run_id, asset_key=context.asset_key.to_user_string(), partition=partition
    )


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
        for day in _days(context):
            batch = read_batch(folder, source, day)
            lake.replace(
                table, batch.frame, partition={"_batch_date": day}, commit=_commit(context, day)
            )
            rows += batch.frame.height
            context.log.info(
                f"{table} {day}: {batch.frame.height} rows from {len(batch.files)} file(s)"
            )
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
        for days in _chunks(_days(context), SILVER_DAYS_PER_COMMIT):
            bronze = lake.read(flow.bronze, where=pl.col("_batch_date").is_in(days))
            batch = flow.transform(bronze)
            lake.merge(table, batch, commit=_commit(context))
            rows += batch.height
            context.log.info(f"{table}: merged {batch.height} rows from {days[0]}..{days[-1]}")
        return MaterializeResult(metadata={"rows_merged": rows, **table_metadata(lake, table)})

    return _silver


def _chunks(days: list[date], size: int) -> Iterator[list[date]]:
    for start in range(0, len(days), size):
        yield days[start : start + size]


bronze_assets = [bronze_asset(source) for source in LANDING_SOURCES.values()]
silver_assets = [silver_asset(flow) for flow in SILVER_FLOWS.values()]
