"""The demo: simulate a SaaS world and materialize every asset over its days, in-process.

Runs go to the Dagster instance under ``SCOREHOUSE_HOME/dagster``, so ``dagster dev`` shows them
afterwards. Safe to run twice: the simulator is deterministic, bronze replaces each day's
partition and silver merges on primary keys, so a second run leaves the same rows.
"""

from __future__ import annotations

import os
import time
from datetime import date, timedelta

from dagster import AssetKey, DagsterInstance
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
    3. ``daily_pipeline`` over the last days: ingest → features → scoring → online → monitoring;
    4. the retrain policy on the monitoring verdicts (what the ``monitoring_retrain`` sensor
       does): if drift calls for it, retrain a challenger, shadow-score it on the last day
       beside the champion, then take the promotion decision.
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
    close_the_loop(instance, history_end + timedelta(days=1), last)


def close_the_loop(instance: DagsterInstance, first: date, last: date) -> None:
    """Act on the monitoring verdicts of ``first..last`` as the retrain sensor would."""
    import polars as pl

    from lakehouse.storage import Lakehouse
    from orchestration.scoring.assets import PREDICTION_KEYS
    from orchestration.training.assets import CHAMPION_KEY, TRAINING_SET_KEY, training_assets

    verdicts = (
        Lakehouse()
        .read("monitoring.verdicts", where=pl.col("as_of_date").is_between(first, last))
        .sort("as_of_date")
    )
    for row in verdicts.iter_rows(named=True):
        print(
            f"[scorehouse demo] monitoring {row['as_of_date']}: {row['verdict']}, retrain "
            f"{'recommended' if row['retrain_recommended'] else 'not needed'} "
            f"({'; '.join(row['reasons'][:3])}) — report {row['report_path']}",
            flush=True,
        )
    if not verdicts["retrain_recommended"].any():
        return
    candidate = [key for key in (a.key for a in training_assets) if key != CHAMPION_KEY]
    run_job(instance, "weekly_retrain", {}, asset_selection=[TRAINING_SET_KEY, *candidate])
    shadow = {"ops": {"predictions": {"config": {"model_alias": "challenger"}}}}
    run_job(
        instance,
        "daily_pipeline",
        _range(last, last),
        asset_selection=PREDICTION_KEYS,
        run_config=shadow,
    )
    run_job(instance, "weekly_retrain", {}, asset_selection=[CHAMPION_KEY])
    decision = Lakehouse().read("ml.model_decisions").sort("decided_at").row(-1, named=True)
    print(
        f"[scorehouse demo] promotion decision: {decision['decision']} "
        f"(challenger v{decision['challenger_version']}): {decision['reason']}",
        flush=True,
    )


def _range(first: date, last: date) -> dict[str, str]:
    """Tags of a single run over the daily partitions ``first..last``."""
    return {
        ASSET_PARTITION_RANGE_START_TAG: first.isoformat(),
        ASSET_PARTITION_RANGE_END_TAG: last.isoformat(),
    }


def run_job(
    instance: DagsterInstance,
    name: str,
    tags: dict[str, str],
    *,
    asset_selection: list[AssetKey] | None = None,
    run_config: dict | None = None,
) -> None:
    """Execute one job (or a selection of its assets) in-process; raise if it fails."""
    from orchestration.definitions import defs

    started = time.perf_counter()
    what = (
        name
        if asset_selection is None
        else f"{name} [{', '.join(k.to_user_string() for k in asset_selection)}]"
    )
    print(f"[scorehouse demo] {what} …", flush=True)
    result = defs.get_job_def(name).execute_in_process(
        instance=instance, tags=tags, asset_selection=asset_selection, run_config=run_config
    )
    if not result.success:
        raise RuntimeError(f"demo job {name} failed (run {result.run_id})")
    print(
        f"[scorehouse demo] {name} done in {time.perf_counter() - started:.0f}s "
        f"(run {result.run_id})",
        flush=True,
    )
