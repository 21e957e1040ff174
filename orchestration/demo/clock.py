"""What every demo walk shares: a clock evaluating the code location's sensors and schedules,
runs of a use case's jobs, and the printed verdicts, lifecycle and online checks.

Every launch is a run of a real job in the Dagster instance under ``SCOREHOUSE_HOME/dagster``
(``orchestration.runs``), so ``dagster dev`` lists them under their jobs; the sensors and
schedules are the definitions of the code location, evaluated against the instance at the
simulated time, and their run requests are launched as runs of their jobs, tagged as the daemon
tags them (a run key is launched once).
"""

from __future__ import annotations

import json
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

from orchestration import runs


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
            run_config=dict(request.run_config) if request.run_config else None,
            instance=self.instance,
        )
        by = tags.get("dagster/sensor_name") or tags.get("dagster/schedule_name")
        self.launched.append(f"{job} {run_id} ({by})")
        return run_id


def run_job(
    instance: DagsterInstance,
    use_case: str,
    job: str,
    tags: dict[str, str],
    *,
    asset_selection: list[AssetKey] | None = None,
    run_config: dict | None = None,
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


def retrain(instance: DagsterInstance, use_case: str, day: date) -> str:
    """A manual ``weekly_retrain`` for ``day`` (it learns the labels matured by then)."""
    tags = {"scorehouse/trigger": "manual", "scorehouse/as_of": str(day)}
    return run_job(instance, use_case, "weekly_retrain", tags)


def scored_assets(name: str, *, evidence: bool = False) -> list[AssetKey]:
    """The daily pipeline's assets after ingestion: scoring, online predictions, monitoring
    (and, with ``evidence``, the spec's evidence assets)."""
    from models.usecase import load_use_cases
    from orchestration.evidence.assets import evidence_assets
    from orchestration.monitoring.assets import drift_key, performance_key, report_key
    from orchestration.scoring.assets import prediction_keys

    use_case = load_use_cases()[name]
    online = AssetKey(["feast", f"{use_case.name}_prediction_online"])
    monitored = [drift_key(use_case), performance_key(use_case), report_key(use_case)]
    keys = [*prediction_keys(use_case), online, *monitored]
    if evidence:
        keys += [key for definition in evidence_assets(use_case) for key in definition.keys]
    return keys


def daily_tick(clock: Clock, name: str, day: date) -> None:
    """The daily schedule's run of ``day`` (the whole job), the retrain sensor, the gate's
    schedule, as the daemon would launch them the morning after."""
    at = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    clock.schedule(f"{name}_daily_schedule", at + timedelta(hours=2))
    clock.sensor(f"{name}_monitoring_retrain")
    clock.schedule(f"{name}_promotion_gate_schedule", at + timedelta(hours=5))


def verdict_row(name: str, day: date) -> dict[str, Any] | None:
    """The newest monitoring verdict of ``day``, or None."""
    import polars as pl

    from models.usecase import load_use_cases

    use_cases = load_use_cases()
    use_case, lake = use_cases[name], use_cases.lakehouse()
    rows = lake.read(use_case.tables.monitoring.verdicts, where=pl.col("as_of_date") == day)
    return None if rows.is_empty() else rows.sort("computed_at").row(-1, named=True)


def print_verdict(name: str, day: date) -> None:
    row = verdict_row(name, day)
    if row is None:
        return
    triggers = ", ".join(row["triggers"] or [])
    action = f"recommended ({triggers})" if row["retrain_recommended"] else "not needed"
    print(
        f"[scorehouse] {name} {day}: {row['verdict']}; retrain {action}"
        + (f" — {row['reasons'][0][:140]}" if row["reasons"] else ""),
        flush=True,
    )
    for line in row.get("deferred") or []:
        print(f"[scorehouse]   {line[:220]}", flush=True)


def print_lifecycle(name: str, clock: Clock | None = None) -> None:
    """Matured performance by vintage, every version's moves with their evidence, what the
    sensors and schedules launched, the online store's agreement, the dashboard."""
    import polars as pl

    from models.lifecycle.states import timeline
    from models.monitoring.dashboard import write_dashboard
    from models.usecase import load_use_cases

    use_cases = load_use_cases()
    use_case, lake = use_cases[name], use_cases.lakehouse()
    performance = lake.read(use_case.tables.monitoring.performance)
    print(
        f"\n[scorehouse] {name}: matured performance by vintage "
        f"({use_case.tables.monitoring.performance}):"
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
    print(f"\n[scorehouse] {name}: lifecycle ({use_case.tables.decisions}):")
    for row in timeline(lake, use_case).iter_rows(named=True):
        print(
            f"  {row['as_of_date']}  v{row['challenger_version']} {row['from_state']} → "
            f"{row['to_state']} ({row['decision']}, trigger {row['trigger']}): "
            f"{row['reason'][:160]}"
        )
        for line in evidence_lines(row["evidence"]):
            print(f"      {line}")
    if clock is not None:
        print(f"\n[scorehouse] {name}: launched by sensors and schedules:")
        for line in clock.launched:
            if line.startswith(f"{name}_"):
                print(f"  {line}")
    print(f"[scorehouse] {online_check(name)}")
    path = write_dashboard(lake, use_case)
    print(f"\n[scorehouse] {name}: dashboard: {path}")


def evidence_lines(raw: str | None) -> list[str]:
    """A shadow decision's evidence, briefly: days, rows, each metric with its interval."""
    if not raw:
        return []
    evidence = json.loads(raw)
    if evidence.get("kind") != "matured shadow-scoring":
        return []
    lines = [
        f"{evidence['days_in_shadow']} days in shadow; {evidence['rows']} matured paired rows, "
        f"{evidence['positives']} positives, {evidence['days']} scored days"
    ]
    for metric, interval in evidence["difference"].items():
        lines.append(
            f"{metric}: champion {evidence['champion'][metric]:.4f}, shadow "
            f"{evidence['shadow'][metric]:.4f}, gain {interval['estimate']:+.4f} "
            f"[{interval['low']:+.4f}, {interval['high']:+.4f}]"
        )
    lines.append(
        f"ece: champion {evidence['champion']['ece']:.4f}, shadow {evidence['shadow']['ece']:.4f};"
        f" score stability PSI {evidence['stability_psi']:.3f}"
    )
    return lines


def online_check(name: str) -> str:
    """Every scored entity's online score is the recorded one (none missing)."""
    from models.scoring.online import compare_online
    from models.usecase import load_use_cases
    from orchestration.resources import FeatureStoreResource

    use_cases = load_use_cases()
    tables = use_cases[name].tables.scoring
    diff = compare_online(FeatureStoreResource().get(), use_cases.lakehouse(), tables)
    return (
        f"{name} online store: {diff.checked} entities checked, {len(diff.entities)} differ "
        "from the recorded champion scores"
    )
