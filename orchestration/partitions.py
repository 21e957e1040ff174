"""Daily partitions per source system, and helpers for partitioned runs.

A simulated source's partitions are its world's days (``SCOREHOUSE_START_DATE`` and
``SCOREHOUSE_SIM_DAYS``, or ``SCOREHOUSE_SIM_LENDING_START_DATE`` and ``_LENDING_DAYS`` for
the lender): no empty days past the data. A real source's run from its spec's
``start_date`` (default ``SCOREHOUSE_START_DATE``) to today, so a file dropped today can be
ingested today.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

from dagster import AssetExecutionContext, DailyPartitionsDefinition

from lakehouse.commit import CommitInfo
from lakehouse.sources.contract import delivered_days
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
        return _daily(WORLD.start_of(source.simulator), WORLD.end_of(source.simulator))
    return _daily(first_day(source), None)


def check_days(source: SourceSpec, first: date, last: date, landing_dir: Path) -> None:
    """Refuse, saying what to set, days outside ``source``'s daily partitions."""
    partitions = source_partitions(source)
    start = date.fromisoformat(partitions.start.strftime("%Y-%m-%d"))
    if first > last:
        raise ValueError(f"--from {first} is after --to {last}")
    if first < start:
        delivered = [d for feed in source.tables.feeds for d in delivered_days(landing_dir, feed)]
        found = f"; the earliest landing day found is {min(delivered)}" if delivered else ""
        raise ValueError(
            f"day {first} is before the first daily partition {start} of source "
            f"{source.name!r}{found}: set SCOREHOUSE_START_DATE (or the spec's "
            "source.start_date) to that day or earlier"
        )
    keys = partitions.get_partition_keys()
    end = date.fromisoformat(keys[-1]) if keys else start
    if last > end:
        what = "the simulated world's last day" if source.simulator and WORLD.simulate else "today"
        raise ValueError(
            f"day {last} is after the last daily partition {end} of source {source.name!r} ({what})"
        )


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
    return CommitInfo(run_id=context.run.run_id, asset_key=key, partition=partition)
