"""The demo: simulate a SaaS world and run the churn use case's jobs over its days.

Runs go to the Dagster instance under ``SCOREHOUSE_HOME/dagster`` as runs of their jobs (a
reconstructable job of the code location, executed in this process), so ``dagster dev`` lists
them under ``churn_ingest_and_features``, ``churn_weekly_retrain`` and ``churn_daily_pipeline``.
Safe to run twice: the simulator is deterministic, bronze replaces each day's partition and
silver merges on primary keys, so a second run leaves the same rows.
"""

from __future__ import annotations

from datetime import date, timedelta

from dagster import AssetKey, DagsterInstance

from lakehouse import config
from orchestration import runs
from orchestration.runs import dagster_home, partition_range

USE_CASE = "churn"


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
        f"[scorehouse] world: {WORLD.customers} customers, {WORLD.days} days "
        f"({first}..{last}), seed {WORLD.seed}; home {config.scorehouse_home()}",
        flush=True,
    )
    _claim_landing(last)
    instance = DagsterInstance.get()
    run_job(instance, "ingest_and_features", partition_range(first, history_end))
    run_job(instance, "weekly_retrain", {})
    run_job(instance, "daily_pipeline", partition_range(history_end + timedelta(days=1), last))
    close_the_loop(instance, history_end + timedelta(days=1), last)


def _claim_landing(last: date) -> None:
    """Refuse up front a home whose landing folder holds your files or another world."""
    from lakehouse.sources.claim import claim_landing
    from lakehouse.sources.saas.contract import SAAS_FEEDS
    from orchestration.resources import LandingResource, SimulatorResource

    world = SimulatorResource().config(last).identity()
    claim_landing(LandingResource().get(), "saas", SAAS_FEEDS, world)


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
            f"[scorehouse] monitoring {row['as_of_date']}: {row['verdict']}, retrain "
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
        partition_range(last, last),
        asset_selection=prediction_keys(use_case),
        run_config=shadow,
    )
    run_job(instance, "weekly_retrain", {}, asset_selection=[champion_key(use_case)])
    decision = lake.read(use_case.tables.decisions).sort("decided_at").row(-1, named=True)
    print(
        f"[scorehouse] promotion decision: {decision['decision']} "
        f"(challenger v{decision['challenger_version']}): {decision['reason']}",
        flush=True,
    )


def run_job(
    instance: DagsterInstance,
    job: str,
    tags: dict[str, str],
    *,
    asset_selection: list[AssetKey] | None = None,
    run_config: dict | None = None,
    use_case: str = USE_CASE,
) -> str:
    """One of the use case's jobs, as a run of that job (``orchestration.runs``)."""
    return runs.run_job(
        f"{use_case}_{job}",
        tags,
        asset_selection=asset_selection,
        run_config=run_config,
        instance=instance,
    )
