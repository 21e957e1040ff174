"""The demo: a simulated SaaS world run as its schedules and sensors would run it.

A clock walks the world's days. Every launch is a run of a real job in the Dagster instance
under ``SCOREHOUSE_HOME/dagster`` (``orchestration.runs``), so ``dagster dev`` lists them under
their jobs; the sensors (``<uc>_monitoring_retrain``, ``<uc>_promotion_gate_sensor``) and the
schedules (``<uc>_promotion_gate_schedule``, ``<uc>_daily_schedule``) are the definitions of
the code location, evaluated against the instance at the simulated time, and their run
requests are launched as runs of their jobs, tagged as the daemon tags them (a run key is
launched once).

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

import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from dagster import (
    AssetKey,
    DagsterInstance,
    Definitions,
    RunRequest,
    RunsFilter,
    build_schedule_context,
    build_sensor_context,
)

from lakehouse import config
from orchestration import runs
from orchestration.runs import dagster_home, partition_range

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


@dataclass
class Clock:
    """Evaluates the code location's sensors and schedules at simulated times and launches
    what they ask for, as the Dagster daemon would."""

    instance: DagsterInstance
    defs: Definitions
    cursors: dict[str, str | None] = field(default_factory=dict)
    launched: list[str] = field(default_factory=list)

    def resources(self) -> dict[str, Any]:
        from orchestration.resources import default_resources

        return dict(default_resources())

    def sensor(self, name: str) -> list[str]:
        """One tick of sensor ``name``; the run ids it launched."""
        definition = self.defs.resolve_sensor_def(name)
        context = build_sensor_context(
            instance=self.instance,
            cursor=self.cursors.get(name),
            sensor_name=name,
            resources=self.resources(),
            definitions=self.defs,
        )
        data = definition.evaluate_tick(context)
        self.cursors[name] = data.cursor
        job = definition.job_name
        assert job is not None
        if not data.run_requests:
            return []
        return [self._launch(job, r, {"dagster/sensor_name": name}) for r in data.run_requests]

    def schedule(self, name: str, at: datetime) -> list[str]:
        """The tick of schedule ``name`` at ``at``; the run ids it launched."""
        definition = self.defs.resolve_schedule_def(name)
        context = build_schedule_context(
            instance=self.instance, scheduled_execution_time=at, resources=self.resources()
        )
        data = definition.evaluate_tick(context)
        launched = []
        for request in data.run_requests or []:
            tags = {"dagster/schedule_name": name}
            if request.partition_key:  # one partition, as the daemon launches it
                tags["dagster/partition"] = request.partition_key
            launched.append(self._launch(definition.job_name, request, tags))
        return launched

    def _launch(self, job: str, request: RunRequest, tags: dict[str, str]) -> str:
        key = request.run_key
        if key is not None:
            tags = {**tags, "dagster/run_key": key}
            done = self.instance.get_runs(filters=RunsFilter(tags={"dagster/run_key": key}))
            if done:
                return done[0].run_id
        run_id = runs.run_job(
            job,
            {**{k: str(v) for k, v in request.tags.items()}, **tags},
            run_config=request.run_config or None,
            instance=self.instance,
        )
        by = tags.get("dagster/sensor_name") or tags.get("dagster/schedule_name")
        self.launched.append(f"{job} {run_id} ({by})")
        return run_id


def run_demo() -> None:
    """Walk the world (see the module docstring) and print what the loop did."""
    dagster_home()
    from orchestration.definitions import defs
    from orchestration.settings import WORLD

    started = time.perf_counter()
    first, last = WORLD.start_date, WORLD.end_date
    print(
        f"[scorehouse] world: {WORLD.customers} customers, {WORLD.days} days ({first}..{last}), "
        f"seed {WORLD.seed}; usage shift from day {WORLD.drift_day}, concept shift "
        f"({WORLD.churn_risk_segment} cancels ×{1 + WORLD.churn_risk:g}) from day "
        f"{WORLD.concept_day}; home {config.scorehouse_home()}",
        flush=True,
    )
    _claim_landing(last)
    instance = DagsterInstance.get()
    clock = Clock(instance, defs())
    day = first + timedelta(days=HISTORY_DAYS - 1)
    ingested = day
    run_job(instance, "ingest_and_features", partition_range(first, day))
    run_job(
        instance, "weekly_retrain", {"scorehouse/trigger": "manual", "scorehouse/as_of": str(day)}
    )
    clock.sensor(f"{USE_CASE}_promotion_gate_sensor")  # the first candidate → champion
    daily_from = last - timedelta(days=DAILY_DAYS - 1)
    while day + timedelta(days=7) < daily_from:
        day += timedelta(days=7)
        if ingested < day:  # the next delivery
            through = min(ingested + timedelta(days=DELIVERY_DAYS), daily_from - timedelta(days=1))
            run_job(
                instance,
                "ingest_and_features",
                partition_range(ingested + timedelta(days=1), through),
            )
            ingested = through
        # The scored day's scoring, online predictions and monitoring (its data is ingested).
        run_job(instance, "daily_pipeline", partition_range(day, day), asset_selection=_scored())
        _tick(clock, day)
    if ingested + timedelta(days=1) < daily_from:
        run_job(
            instance,
            "ingest_and_features",
            partition_range(ingested + timedelta(days=1), daily_from - timedelta(days=1)),
        )
    for offset in range(DAILY_DAYS):
        today = daily_from + timedelta(days=offset)
        at = datetime.combine(today + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
        clock.schedule(f"{USE_CASE}_daily_schedule", at + timedelta(hours=2))
        clock.sensor(f"{USE_CASE}_monitoring_retrain")
        clock.schedule(f"{USE_CASE}_promotion_gate_schedule", at + timedelta(hours=5))
        _print_verdict(today)
    summary(time.perf_counter() - started, clock)


def _scored() -> list[AssetKey]:
    """The daily pipeline's assets after ingestion: scoring, online predictions, monitoring."""
    from models.usecase import load_use_cases
    from orchestration.monitoring.assets import drift_key, performance_key, report_key
    from orchestration.scoring.assets import prediction_keys

    use_case = load_use_cases()[USE_CASE]
    online = AssetKey(["feast", f"{use_case.name}_prediction_online"])
    monitored = [drift_key(use_case), performance_key(use_case), report_key(use_case)]
    return [*prediction_keys(use_case), online, *monitored]


def _tick(clock: Clock, day: date) -> None:
    """After a scored day: the retrain sensor, then the gate sensor (new candidate or scores)."""
    clock.sensor(f"{USE_CASE}_monitoring_retrain")
    clock.sensor(f"{USE_CASE}_promotion_gate_sensor")
    _print_verdict(day)


def _print_verdict(day: date) -> None:
    import polars as pl

    from models.usecase import load_use_cases

    use_cases = load_use_cases()
    use_case, lake = use_cases[USE_CASE], use_cases.lakehouse()
    rows = lake.read(use_case.tables.monitoring.verdicts, where=pl.col("as_of_date") == day)
    if rows.is_empty():
        return
    row = rows.sort("computed_at").row(-1, named=True)
    triggers = ", ".join(row["triggers"] or [])
    action = f"recommended ({triggers})" if row["retrain_recommended"] else "not needed"
    print(
        f"[scorehouse] {day}: {row['verdict']}; retrain {action}"
        + (f" — {row['reasons'][0][:140]}" if row["reasons"] else ""),
        flush=True,
    )
    for line in row.get("deferred") or []:
        print(f"[scorehouse]   {line[:220]}", flush=True)


def summary(elapsed: float, clock: Clock | None = None) -> None:
    """What the loop did: matured performance by vintage, the lifecycle of every version with
    its evidence, what the sensors and schedules launched, the online store, the dashboard."""
    import polars as pl

    from models.lifecycle.states import timeline
    from models.monitoring.dashboard import write_dashboard
    from models.usecase import load_use_cases

    use_cases = load_use_cases()
    use_case, lake = use_cases[USE_CASE], use_cases.lakehouse()
    performance = lake.read(use_case.tables.monitoring.performance)
    print(
        f"\n[scorehouse] matured performance by vintage ({use_case.tables.monitoring.performance}):"
    )
    with pl.Config(tbl_rows=60, tbl_width_chars=160):
        print(
            performance.sort("as_of_date", "model_alias").select(
                "as_of_date",
                "model_alias",
                "model_version",
                "labelled",
                "label_coverage",
                "roc_auc",
                "training_roc_auc",
            )
        )
    print(f"\n[scorehouse] lifecycle ({use_case.tables.decisions}):")
    for row in timeline(lake, use_case).iter_rows(named=True):
        print(
            f"  {row['as_of_date']}  v{row['challenger_version']} {row['from_state']} → "
            f"{row['to_state']} ({row['decision']}, trigger {row['trigger']}): "
            f"{row['reason'][:160]}"
        )
        for line in _evidence_lines(row["evidence"]):
            print(f"      {line}")
    if clock is not None:
        print("\n[scorehouse] launched by sensors and schedules:")
        for line in clock.launched:
            print(f"  {line}")
    print(f"[scorehouse] {_online_check(lake, use_case)}")
    path = write_dashboard(lake, use_case)
    print(f"\n[scorehouse] dashboard: {path}")
    print(f"[scorehouse] demo done in {elapsed:.0f}s", flush=True)


def _evidence_lines(raw: str | None) -> list[str]:
    """A shadow decision's evidence, briefly: days, rows, each metric with its interval."""
    import json

    if not raw:
        return []
    evidence = json.loads(raw)
    if evidence.get("kind") != "matured shadow-scoring":
        return []
    lines = [
        f"{evidence['days_in_shadow']} days in shadow; {evidence['rows']} matured paired rows, "
        f"{evidence['positives']} positives, {evidence['days']} scored days"
    ]
    for name, interval in evidence["difference"].items():
        lines.append(
            f"{name}: champion {evidence['champion'][name]:.4f}, shadow "
            f"{evidence['shadow'][name]:.4f}, gain {interval['estimate']:+.4f} "
            f"[{interval['low']:+.4f}, {interval['high']:+.4f}]"
        )
    lines.append(
        f"ece: champion {evidence['champion']['ece']:.4f}, shadow {evidence['shadow']['ece']:.4f};"
        f" score stability PSI {evidence['stability_psi']:.3f}"
    )
    return lines


def _online_check(lake: Any, use_case: Any) -> str:
    """Every scored entity's online score is the recorded one (none missing)."""
    from models.scoring.online import compare_online
    from orchestration.resources import FeatureStoreResource

    diff = compare_online(FeatureStoreResource().get(), lake, use_case.tables.scoring)
    return (
        f"online store: {diff.checked} entities checked, {len(diff.entities)} differ from the "
        "recorded champion scores"
    )


def _claim_landing(last: date) -> None:
    """Refuse up front a home whose landing folder holds your files or another world."""
    from lakehouse.sources.claim import claim_landing
    from lakehouse.sources.saas.contract import SAAS_FEEDS
    from orchestration.resources import LandingResource, SimulatorResource

    world = SimulatorResource().config(last).identity()
    claim_landing(LandingResource().get(), "saas", SAAS_FEEDS, world)


def run_job(
    instance: DagsterInstance,
    job: str,
    tags: dict[str, str],
    *,
    asset_selection: list[AssetKey] | None = None,
    run_config: dict | None = None,
    use_case: str = USE_CASE,
) -> str:
    """One of the use case's jobs (or a selection of its assets), as a run of that job
    (``orchestration.runs``)."""
    return runs.run_job(
        f"{use_case}_{job}",
        tags,
        asset_selection=asset_selection,
        run_config=run_config,
        instance=instance,
    )
