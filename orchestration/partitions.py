"""Daily partitions per source system, and helpers for partitioned runs.

A simulated source's partitions are its world's days (``SCOREHOUSE_START_DATE`` and
``SCOREHOUSE_SIM_DAYS``): no empty days past the data. A real source's run from its spec's
``start_date`` (default ``SCOREHOUSE_START_DATE``) to today, so a file dropped today can be
ingested today.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import date, timedelta

from dagster import AssetExecutionContext, DailyPartitionsDefinition

from lakehouse.commit import CommitInfo
from models.usecase.spec import SourceSpec
from orchestration.settings import WORLD, first_day


@functools.cache
def _daily(start: date, end: date | None) -> DailyPartitionsDefinition:
    if end is None:
        return DailyPartitionsDefinition(start_date=start.isoformat(), end_offset=1)
    return DailyPartitionsDefinition(
        start_date=start.isoformat(), end_date=(end + timedelta(days=1)).isoformat()
    )


def source_partitions(source: SourceSpec) -> DailyPartitionsDefinition:
    """The daily partitions of everything built from ``source``."""
    if source.simulator is not None and WORLD.simulate:
        return _daily(WORLD.start_date, WORLD.end_date)
    return _daily(first_day(source), None)


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
