"""The demo: simulate a SaaS world and run the churn use case's jobs over its days.

Runs go to the Dagster instance under ``SCOREHOUSE_HOME/dagster`` as runs of their jobs (a
reconstructable job of the code location, executed in this process), so ``dagster dev`` lists
them under ``churn_ingest_and_features``, ``churn_weekly_retrain`` and ``churn_daily_pipeline``.
Safe to run twice: the simulator is deterministic, bronze replaces each day's partition and
silver merges on primary keys, so a second run leaves the same rows.
"""

from __future__ import annotations

import os
import time
from datetime import date, timedelta

from dagster import AssetKey, DagsterInstance, execute_job
from dagster._core.definitions.reconstruct import ReconstructableRepository
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from lakehouse import config
from lakehouse.config import project_root

USE_CASE = "churn"
IN_PROCESS = {"execution": {"config": {"in_process": {}}}}
"""One process per run: steps share the imported libraries (a process per step costs more)."""


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

    1. ``churn_ingest_and_features`` over the history (all but the last ``scored_days`` days);
    2. ``churn_weekly_retrain``: training set → blocking GX checks → train → evaluate → promote;
    3. ``churn_daily_pipeline`` over the last days: ingest → features → scoring → online →
       monitoring;
    4. the retrain policy on the monitoring verdicts (what the retrain sensor does): if drift
       calls for it, retrain a challenger, shadow-score it on the last day beside the champion,
       then take the promotion decision.
    """
    dagster_home()
    from orchestration.settings import WORLD

    first, last = WORLD.start_date, WORLD.end_date
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

    from models.usecase import load_use_cases
    from orchestration.features.feast_assets import training_set_key
    from orchestration.scoring.assets import prediction_keys
    from orchestration.training.assets import champion_key, evaluation_key, model_key

    use_cases = load_use_cases()
    use_case, lake = use_cases[USE_CASE], use_cases.lakehouse()
    verdicts = lake.read(
        use_case.tables.monitoring.verdicts, where=pl.col("as_of_date").is_between(first, last)
    ).sort("as_of_date")
    for row in verdicts.iter_rows(named=True):
        print(
            f"[scorehouse demo] monitoring {row['as_of_date']}: {row['verdict']}, retrain "
            f"{'recommended' if row['retrain_recommended'] else 'not needed'} "
            f"({'; '.join(row['reasons'][:3])}) — report {row['report_path']}",
            flush=True,
        )
    if not verdicts["retrain_recommended"].any():
        return
    candidate = [training_set_key(use_case), model_key(use_case), evaluation_key(use_case)]
    run_job(instance, "weekly_retrain", {}, asset_selection=candidate)
    shadow = {"ops": {f"{USE_CASE}_predictions": {"config": {"model_alias": "challenger"}}}}
    run_job(
        instance,
        "daily_pipeline",
        _range(last, last),
        asset_selection=prediction_keys(use_case),
        run_config=shadow,
    )
    run_job(instance, "weekly_retrain", {}, asset_selection=[champion_key(use_case)])
    decision = lake.read(use_case.tables.decisions).sort("decided_at").row(-1, named=True)
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
    job: str,
    tags: dict[str, str],
    *,
    asset_selection: list[AssetKey] | None = None,
    run_config: dict | None = None,
    use_case: str = USE_CASE,
) -> None:
    """Run one of the use case's jobs (or a selection of its assets) as a run of that job."""
    name = f"{use_case}_{job}"
    started = time.perf_counter()
    what = (
        name
        if asset_selection is None
        else f"{name} [{', '.join(k.to_user_string() for k in asset_selection)}]"
    )
    print(f"[scorehouse demo] {what} …", flush=True)
    repository = ReconstructableRepository.for_module(
        "orchestration.definitions", "defs", working_directory=str(project_root())
    )
    result = execute_job(
        repository.get_reconstructable_job(name),
        instance=instance,
        tags=tags,
        asset_selection=asset_selection,
        run_config={**IN_PROCESS, **(run_config or {})},
    )
    if not result.success:
        raise RuntimeError(f"demo job {name} failed (run {result.run_id})")
    print(
        f"[scorehouse demo] {name} done in {time.perf_counter() - started:.0f}s "
        f"(run {result.run_id})",
        flush=True,
    )
