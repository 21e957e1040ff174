"""Small simulated lending worlds, ingested with the production readers, rules and flows.

``ingest`` does what the bronze and silver assets do for a range of days (cross-feed rules on
the whole chunk first, then bronze replace and silver merge), without Dagster's per-asset
overhead: the credit tests need worlds of a year and more.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path

import polars as pl

from lakehouse.ingest.delivery import check_delivery
from lakehouse.ingest.reader import read_batch
from lakehouse.ingest.tables import SourceTables
from lakehouse.sources.lending import EconomicShock, LendingConfig, simulate
from lakehouse.storage import Lakehouse
from models.usecase import UseCase, load_use_cases, project_lakehouse

CHUNK_DAYS = 31


def credit() -> UseCase:
    """The built-in credit use case (as loaded for the current SCOREHOUSE_HOME)."""
    return load_use_cases()["credit"]


def ingest(lake: Lakehouse, tables: SourceTables, landing: Path, days: Sequence[date]) -> None:
    """Bronze then silver for ``days``, in chunks, as the ingest assets do (rules first)."""
    for start in range(0, len(days), CHUNK_DAYS):
        chunk = list(days[start : start + CHUNK_DAYS])
        check_delivery(lake, tables, landing, chunk)
        for feed in tables.feeds.values():
            frame = pl.concat([read_batch(landing, feed, day).frame for day in chunk])
            lake.replace(f"bronze.{feed.name}", frame, partition={"_batch_date": chunk})
        for flow in tables.flows.values():
            bronze = lake.read(flow.bronze, where=pl.col("_batch_date").is_in(chunk))
            lake.merge(flow.silver.name, flow.transform(bronze))


def lending_world(
    root: Path,
    *,
    loans: int,
    days: int,
    seed: int = 5,
    shock_day: int | None = None,
    ingested_days: int | None = None,
) -> tuple[LendingConfig, Lakehouse]:
    """Simulate ``days`` days into ``root/landing`` and ingest the first ``ingested_days``
    (default: all) into ``root/lake``."""
    config = LendingConfig(
        loans=loans,
        days=days,
        seed=seed,
        shock=None if shock_day is None else EconomicShock(day=shock_day),
    )
    simulate(config, root / "landing")
    lake = project_lakehouse(root / "lake")
    count = days if ingested_days is None else ingested_days
    ingest(
        lake, credit().source.tables, root / "landing", [config.date_of(d) for d in range(count)]
    )
    return config, lake
