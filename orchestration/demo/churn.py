"""The churn demo: a simulated SaaS world run as its schedules and sensors would run it.

A clock (``orchestration.demo.clock``) walks the world's days:

1. history: ``ingest_and_features`` over the first days; a first candidate (``weekly_retrain``)
   which the gate promotes (a first model is judged on its out-of-time rows);
2. weekly: every 4 weeks the next delivery of landing files is ingested
   (``ingest_and_features``); each week's last day is scored by the champion and the model in
   shadow, its online predictions written and monitored (``daily_pipeline``, the assets after
   ingestion), then a tick of the retrain sensor and of the gate sensor. Data ingested ahead
   of the clock is not seen early: a retrain learns only the labels matured by its ``as_of``
   day, the gate only the outcomes matured by the newest scored day, monitoring only those of
   its partition;
3. daily over the last days: the daily schedule's runs (the whole job), the retrain sensor and
   the gate's schedule.

The world has a product change (usage −35 %: a covariate shift the champion copes with) and,
a few days later, a concept shift (``churn_risk``: one region's customers cancel several times
more often), which only matured labels reveal and only a model trained on later outcomes fixes.
Safe to run twice: the simulator is deterministic, ingestion replaces or merges by key.
"""

from __future__ import annotations

from datetime import date, timedelta

from dagster import DagsterInstance

from lakehouse import config
from orchestration.demo.clock import (
    Clock,
    daily_tick,
    print_lifecycle,
    print_verdict,
    retrain,
    run_job,
    scored_assets,
)
from orchestration.runs import partition_range

USE_CASE = "churn"
HISTORY_DAYS = 124
"""Days ingested before the first model: enough matured labels for a time split with 3
weekly training dates."""
DELIVERY_DAYS = 28
"""The landing files of this many days are ingested in one run ahead of the clock (a monthly
delivery); every run acts only on what was known at its day (the retrain's ``as_of`` tag, the
gate's data clock, monitoring's partition)."""
DAILY_DAYS = 3
"""The last days run one by one by the daily schedule."""


def walk(instance: DagsterInstance, clock: Clock) -> None:
    """Walk the SaaS world (see the module docstring) and print what the loop did."""
    from orchestration.settings import WORLD

    first, last = WORLD.start_of("saas"), WORLD.end_of("saas")
    print(
        f"[scorehouse] churn world: {WORLD.customers} customers, {WORLD.days} days "
        f"({first}..{last}), seed {WORLD.seed}; usage shift from day {WORLD.drift_day}, concept "
        f"shift ({WORLD.churn_risk_segment} cancels ×{1 + WORLD.churn_risk:g}) from day "
        f"{WORLD.concept_day}; home {config.scorehouse_home()}",
        flush=True,
    )
    _claim_landing(last)
    day = first + timedelta(days=HISTORY_DAYS - 1)
    ingested = day
    run_job(instance, USE_CASE, "ingest_and_features", partition_range(first, day))
    retrain(instance, USE_CASE, day)
    clock.sensor(f"{USE_CASE}_promotion_gate_sensor")  # the first candidate → champion
    daily_from = last - timedelta(days=DAILY_DAYS - 1)
    while day + timedelta(days=7) < daily_from:
        day += timedelta(days=7)
        if ingested < day:  # the next delivery
            through = min(ingested + timedelta(days=DELIVERY_DAYS), daily_from - timedelta(days=1))
            _ingest(instance, ingested + timedelta(days=1), through)
            ingested = through
        # The scored day's scoring, online predictions and monitoring (its data is ingested).
        run_job(
            instance,
            USE_CASE,
            "daily_pipeline",
            partition_range(day, day),
            asset_selection=scored_assets(USE_CASE),
        )
        _tick(clock, day)
    if ingested + timedelta(days=1) < daily_from:
        _ingest(instance, ingested + timedelta(days=1), daily_from - timedelta(days=1))
    for offset in range(DAILY_DAYS):
        today = daily_from + timedelta(days=offset)
        daily_tick(clock, USE_CASE, today)
        print_verdict(USE_CASE, today)
    print_lifecycle(USE_CASE, clock)


def _ingest(instance: DagsterInstance, first: date, last: date) -> None:
    run_job(instance, USE_CASE, "ingest_and_features", partition_range(first, last))


def _tick(clock: Clock, day: date) -> None:
    """After a scored day: the retrain sensor, then the gate sensor (new candidate or scores)."""
    clock.sensor(f"{USE_CASE}_monitoring_retrain")
    clock.sensor(f"{USE_CASE}_promotion_gate_sensor")
    print_verdict(USE_CASE, day)


def _claim_landing(last: date) -> None:
    """Refuse up front a home whose landing folder holds your files or another world."""
    from lakehouse.sources.claim import claim_landing
    from lakehouse.sources.saas.contract import SAAS_FEEDS
    from orchestration.resources import LandingResource, SimulatorResource

    world = SimulatorResource().config(last).identity()
    claim_landing(LandingResource().get(), "saas", SAAS_FEEDS, world)
