"""The demo: simulate a SaaS world and materialize every asset over its days, in-process.

Runs go to the Dagster instance under ``SCOREHOUSE_HOME/dagster``, so ``dagster dev`` shows them
afterwards. Safe to run twice: the simulator is deterministic, bronze replaces each day's
partition and silver merges on primary keys, so a second run leaves the same rows.
"""

from __future__ import annotations

import os
import time
from datetime import timedelta

from lakehouse import config


def dagster_home() -> str:
    """``DAGSTER_HOME``, defaulting to ``SCOREHOUSE_HOME/dagster`` (created if needed)."""
    home = os.environ.get("DAGSTER_HOME") or str(config.scorehouse_home() / "dagster")
    os.makedirs(home, exist_ok=True)
    # An empty dagster.yaml: the defaults (SQLite storage in this folder), stated explicitly.
    open(os.path.join(home, "dagster.yaml"), "a").close()
    os.environ["DAGSTER_HOME"] = home
    return home


def run_demo() -> None:
    """Materialize the daily ingest job over the whole simulated range as one run."""
    dagster_home()
    from dagster import DagsterInstance
    from dagster._core.storage.tags import (
        ASSET_PARTITION_RANGE_END_TAG,
        ASSET_PARTITION_RANGE_START_TAG,
    )

    from orchestration.definitions import defs
    from orchestration.settings import WORLD

    first, last = WORLD.start_date, WORLD.start_date + timedelta(days=WORLD.days - 1)
    print(
        f"[scorehouse demo] world: {WORLD.customers} customers, {WORLD.days} days "
        f"({first}..{last}), seed {WORLD.seed}; home {config.scorehouse_home()}",
        flush=True,
    )
    started = time.perf_counter()
    job = defs.get_job_def("daily_pipeline")
    result = job.execute_in_process(
        instance=DagsterInstance.get(),
        tags={
            ASSET_PARTITION_RANGE_START_TAG: first.isoformat(),
            ASSET_PARTITION_RANGE_END_TAG: last.isoformat(),
        },
    )
    if not result.success:
        raise RuntimeError(f"demo run {result.run_id} failed")
    print(
        f"[scorehouse demo] daily_pipeline done in {time.perf_counter() - started:.0f}s "
        f"(run {result.run_id})",
        flush=True,
    )
