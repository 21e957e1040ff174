"""The demo: simulate a SaaS world and materialize every asset over its days, in-process.

Runs go to the Dagster instance under ``SCOREHOUSE_HOME/dagster``, so ``dagster dev`` shows them
afterwards. Safe to run twice: the simulator is deterministic, bronze replaces each day's
partition and silver merges on primary keys, so a second run leaves the same rows.
"""

from __future__ import annotations

import os
import time
from datetime import date, timedelta

from dagster import DagsterInstance
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from lakehouse import config


def dagster_home() -> str:
    """``DAGSTER_HOME``, defaulting to ``SCOREHOUSE_HOME/dagster`` (created if needed)."""
    home = os.environ.get("DAGSTER_HOME") or str(config.scorehouse_home() / "dagster")
    os.makedirs(home, exist_ok=True)
    # An empty dagster.yaml: the defaults (SQLite storage in this folder), stated explicitly.
    open(os.path.join(home, "dagster.yaml"), "a").close()
    os.environ["DAGSTER_HOME"] = home
    return home


def run_demo(scored_days: int = 7) -> None:
    """History, a first model, then the last ``scored_days`` days run as daily operations.

    1. ``ingest_and_features`` over the history (all but the last ``scored_days`` days);
    2. ``weekly_retrain``: training set → blocking GX checks → train → evaluate → promote;
    3. ``daily_pipeline`` over the last days: ingest → features → scoring → online.
    """
    dagster_home()
    from orchestration.settings import WORLD

    first, last = WORLD.start_date, WORLD.start_date + timedelta(days=WORLD.days - 1)
    history_end = last - timedelta(days=scored_days)
    print(
        f"[scorehouse demo] world: {WORLD.customers} customers, {WORLD.days} days "
        f"({first}..{last}), seed {WORLD.seed}; home {config.scorehouse_home()}",
        flush=True,
    )
    instance = DagsterInstance.get()
    run_job(instance, "ingest_and_features", _range(first, history_end))
    run_job(instance, "weekly_retrain", {})
    run_job(instance, "daily_pipeline", _range(history_end + timedelta(days=1), last))


def _range(first: date, last: date) -> dict[str, str]:
    """Tags of a single run over the daily partitions ``first..last``."""
    return {
        ASSET_PARTITION_RANGE_START_TAG: first.isoformat(),
        ASSET_PARTITION_RANGE_END_TAG: last.isoformat(),
    }


def run_job(instance: DagsterInstance, name: str, tags: dict[str, str]) -> None:
    """Execute one job of the definitions in-process; raise if it fails."""
    from orchestration.definitions import defs

    started = time.perf_counter()
    print(f"[scorehouse demo] {name} …", flush=True)
    result = defs.get_job_def(name).execute_in_process(instance=instance, tags=tags)
    if not result.success:
        raise RuntimeError(f"demo job {name} failed (run {result.run_id})")
    print(
        f"[scorehouse demo] {name} done in {time.perf_counter() - started:.0f}s "
        f"(run {result.run_id})",
        flush=True,
    )
