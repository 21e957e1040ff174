"""Partitions shared by every domain (one per calendar day) and helpers for partitioned runs."""

from collections.abc import Iterator
from datetime import date

from dagster import AssetExecutionContext, DailyPartitionsDefinition

from lakehouse.commit import CommitInfo
from orchestration.settings import WORLD

daily_partitions = DailyPartitionsDefinition(start_date=WORLD.start_date.isoformat())


def partition_days(context: AssetExecutionContext) -> list[date]:
    """The run's daily partitions (one, or a range in a single-run backfill), in order."""
    return sorted(date.fromisoformat(key) for key in context.partition_keys)


def day_chunks(days: list[date], size: int) -> Iterator[list[date]]:
    """Consecutive runs of at most ``size`` days: one commit each, bounded memory."""
    ordered = sorted(days)
    for start in range(0, len(ordered), size):
        yield ordered[start : start + size]


def commit_info(
    context: AssetExecutionContext, days: list[date], asset_key: str | None = None
) -> CommitInfo:
    """Commit metadata for a write covering ``days`` (Dagster run, asset key, partition range)."""
    partition = days[0].isoformat() if len(days) == 1 else f"{days[0]}..{days[-1]}"
    key = asset_key or context.asset_key.to_user_string()
    return CommitInfo(run_id=context.run_id, asset_key=key, partition=partition)
