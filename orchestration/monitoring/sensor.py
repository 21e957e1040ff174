"""The retrain triggers of a use case: the monitoring sensor and the retrain schedule.

``<uc>_monitoring_retrain`` reads the rows appended to the use case's verdicts table since its
cursor, in order. A row recommending a retrain names its triggers (``drift``, ``performance``;
``models.monitoring.policy.assess`` — a pipeline fault never recommends). It launches
``<uc>_weekly_retrain``, which trains a *candidate* (``models.lifecycle.states``), unless

* a retrain was launched within ``cooldown_days`` as-of days (the last launch is the newest
  ``trigger_as_of`` of the registered versions, or the cursor's);
* a candidate of the same trigger is still waiting in ``candidate`` or ``shadow``;
* the trigger's window (``policy.trigger_window``) already had its candidate: the run key
  ``<uc>:retrain:<trigger>:<window>`` is launched once (Dagster skips a repeated run key);
* for ``drift``: a drift candidate was already rejected against the current champion (it copes
  with the drift: no gain on matured outcomes); a new champion re-arms it, and a decay of its
  matured performance still launches.

``<uc>_weekly_retrain_schedule`` is the ``schedule`` trigger with the same cooldown and
deduplication. The cooldown is the use case's monitoring policy (``monitoring.policy`` in the
spec, the defaults of the monitoring run config). Cursor: JSON ``{"seen": <computed_at of the
last row read>, "last_launch": <as-of date of the last launch>}``.
"""

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import date, datetime

import polars as pl
from dagster import (
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    schedule,
    sensor,
)

from models.lifecycle.gate import data_today
from models.lifecycle.registry import CANDIDATE, CHAMPION, SHADOW, STATE_TAG, ModelRegistry
from models.lifecycle.states import REJECTED, state_of
from models.monitoring.policy import (
    DRIFT_TRIGGER,
    PERFORMANCE_TRIGGER,
    SCHEDULE_TRIGGER,
    RetrainPolicy,
    cooldown_allows,
    trigger_window,
)
from models.usecase.spec import UseCase
from orchestration.features.feast_assets import AS_OF_TAG
from orchestration.resources import LakehouseResource, ModelRegistryResource

TRIGGER_TAG, WINDOW_TAG = "scorehouse/trigger", "scorehouse/window"


@dataclass(frozen=True)
class SensorCursor:
    """What the sensor has read and when it last launched."""

    seen: str | None = None
    last_launch: str | None = None

    @classmethod
    def parse(cls, raw: str | None) -> "SensorCursor":
        return cls(**json.loads(raw)) if raw else cls()

    def dump(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


@dataclass(frozen=True)
class Launch:
    """A retrain to launch: the verdict row, the trigger and its window."""

    as_of: date
    trigger: str
    window: date
    reasons: list[str]
    verdict_run: str

    def run_key(self, use_case: str) -> str:
        return f"{use_case}:retrain:{self.trigger}:{self.window}"

    def tags(self, use_case: str) -> dict[str, str]:
        return {
            TRIGGER_TAG: self.trigger,
            AS_OF_TAG: str(self.as_of),
            WINDOW_TAG: str(self.window),
            "scorehouse/use_case": use_case,
            "scorehouse/reasons": "; ".join(self.reasons)[:1000],
        }


def _triggers(row: Mapping[str, object]) -> list[str]:
    """A verdict row's triggers (rows written before they were recorded: from the reasons)."""
    found = row.get("triggers")
    if isinstance(found, list) and found:
        return [str(t) for t in found]
    reasons = row.get("reasons") or []
    assert isinstance(reasons, list)
    kinds = [
        k
        for k in (DRIFT_TRIGGER, PERFORMANCE_TRIGGER)
        if any(str(r).startswith(k) for r in reasons)
    ]
    return kinds


def pending_triggers(registry: ModelRegistry) -> dict[str, str]:
    """Trigger → version of the versions still waiting in ``candidate`` or ``shadow``."""
    aliases = registry.aliases()
    pending = {}
    for version in registry.versions():
        if state_of(version.tags, aliases.get(str(version.version))) in (CANDIDATE, SHADOW):
            pending.setdefault(version.tags.get("trigger", "manual"), str(version.version))
    return pending


def settled_triggers(registry: ModelRegistry) -> dict[str, str]:
    """``drift`` → the newest version trained for drift and *rejected* against the current
    champion: the champion was shown to cope with the drift (no gain on matured outcomes), so
    drift alone does not launch again until the champion changes; a decay still does."""
    champion = registry.alias(CHAMPION)
    if champion is None:
        return {}
    since = champion.tags.get(f"{CHAMPION}_since", "")
    settled: dict[str, str] = {}
    for version in registry.versions():
        tags = version.tags
        if (
            tags.get("trigger") == DRIFT_TRIGGER
            and tags.get(STATE_TAG) == REJECTED
            and tags.get(f"{REJECTED}_since", "") >= since
        ):
            settled.setdefault(DRIFT_TRIGGER, str(version.version))
    return settled


def last_launch(registry: ModelRegistry) -> date | None:
    """The newest as-of date a registered version was trained for (``trigger_as_of``)."""
    days = [
        date.fromisoformat(v.tags["trigger_as_of"])
        for v in registry.versions()
        if v.tags.get("trigger_as_of")
    ]
    return max(days) if days else None


def plan_launches(
    verdicts: pl.DataFrame,
    cursor: SensorCursor,
    policy: RetrainPolicy,
    *,
    pending: Mapping[str, str] | None = None,
    launched: date | None = None,
    settled: Mapping[str, str] | None = None,
) -> tuple[list[Launch], list[str], SensorCursor]:
    """The launches for the verdict rows after the cursor, skip messages, the advanced cursor
    (pure: ``pending``, ``launched`` and ``settled`` come from the registry)."""
    pending = dict(pending or {})
    settled = dict(settled or {})
    marks = [
        d for d in (launched, cursor.last_launch and date.fromisoformat(cursor.last_launch)) if d
    ]
    last = max(marks) if marks else None
    launches: list[Launch] = []
    skipped: list[str] = []
    rows = verdicts.sort("computed_at")
    if cursor.seen:
        rows = rows.filter(pl.col("computed_at") > datetime.fromisoformat(cursor.seen))
    windows = set()
    for row in rows.filter(pl.col("retrain_recommended")).iter_rows(named=True):
        as_of = row["as_of_date"]
        kinds = _triggers(row)
        for kind in [k for k in kinds if k in settled]:
            skipped.append(
                f"{as_of}: {kind} — v{settled[kind]} ({kind}) was rejected against the current "
                "champion, which copes with it; re-armed by a new champion"
            )
        kinds = [k for k in kinds if k not in settled]
        if not kinds:
            continue
        free = [k for k in kinds if k not in pending]
        if not free:
            waiting = ", ".join(f"v{pending[k]} ({k})" for k in kinds)
            skipped.append(f"{as_of}: retrain recommended, candidate {waiting} still waiting")
            continue
        if not cooldown_allows(as_of, last, policy.cooldown_days):
            skipped.append(f"{as_of}: retrain recommended, in cooldown since {last}")
            continue
        window = trigger_window(as_of, policy.cooldown_days)
        if (free[0], window) in windows:
            continue
        windows.add((free[0], window))
        launches.append(Launch(as_of, free[0], window, list(row["reasons"]), row["dagster_run_id"]))
        pending[free[0]] = "launching"
        last = as_of
    seen = rows["computed_at"].max() if rows.height else None
    advanced = SensorCursor(
        seen.isoformat() if isinstance(seen, datetime) else cursor.seen,
        last.isoformat() if last else None,
    )
    return launches, skipped, advanced


def retrain_sensor(
    use_case: UseCase,
    job_name: str,
    *,
    minimum_interval_seconds: int = 300,
) -> SensorDefinition:
    """The sensor launching ``job_name`` on the use case's retrain recommendations."""
    policy = use_case.monitoring.policy
    verdicts = use_case.tables.monitoring.verdicts

    @sensor(
        name=f"{use_case.name}_monitoring_retrain",
        job_name=job_name,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=DefaultSensorStatus.STOPPED,
        description=f"Launches {job_name} (a candidate) when monitoring recommends a retrain "
        f"(drift or matured-label decay; cooldown {policy.cooldown_days} days, one candidate "
        "per trigger window; pipeline faults never launch).",
    )
    def _retrain(
        context: SensorEvaluationContext,
        lakehouse: LakehouseResource,
        model_registry: ModelRegistryResource,
    ) -> SensorResult:
        lake = lakehouse.get()
        cursor = SensorCursor.parse(context.cursor)
        if not lake.exists(verdicts):
            return SensorResult(skip_reason=SkipReason("no monitoring verdicts yet"))
        registry = model_registry.get(use_case)
        launches, skipped, advanced = plan_launches(
            lake.read(verdicts),
            cursor,
            policy,
            pending=pending_triggers(registry),
            launched=last_launch(registry),
            settled=settled_triggers(registry),
        )
        for message in skipped:
            context.log.info(message)
        requests = [
            RunRequest(run_key=launch.run_key(use_case.name), tags=launch.tags(use_case.name))
            for launch in launches
        ]
        skip = None if requests else SkipReason("; ".join(skipped) or "no new recommendation")
        return SensorResult(run_requests=requests, skip_reason=skip, cursor=advanced.dump())

    return _retrain


def retrain_schedule(use_case: UseCase, job_name: str) -> ScheduleDefinition:
    """The ``schedule`` trigger: ``job_name`` at the spec's retrain cron, with the cooldown and
    one candidate per window (skipped while a scheduled candidate still waits)."""
    policy = use_case.monitoring.policy

    @schedule(
        name=f"{use_case.name}_weekly_retrain_schedule",
        job_name=job_name,
        cron_schedule=use_case.schedules.retrain,
        execution_timezone="UTC",
        default_status=DefaultScheduleStatus.STOPPED,
        description=f"Trains a candidate on schedule ({use_case.schedules.retrain} UTC), unless "
        f"a retrain was launched within {policy.cooldown_days} days or a scheduled candidate "
        "still waits.",
    )
    def _scheduled(
        context: ScheduleEvaluationContext,
        lakehouse: LakehouseResource,
        model_registry: ModelRegistryResource,
    ) -> RunRequest | SkipReason:
        registry = model_registry.get(use_case)
        today = data_today(lakehouse.get(), use_case)
        if today is None:
            return SkipReason("nothing scored yet: no data day to train for")
        pending = pending_triggers(registry)
        if SCHEDULE_TRIGGER in pending:
            return SkipReason(f"scheduled candidate v{pending[SCHEDULE_TRIGGER]} still waits")
        last = last_launch(registry)
        if not cooldown_allows(today, last, policy.cooldown_days):
            return SkipReason(
                f"a retrain was launched for {last}: cooldown {policy.cooldown_days} days"
            )
        launch = Launch(
            today,
            SCHEDULE_TRIGGER,
            trigger_window(today, policy.cooldown_days),
            [f"schedule: {use_case.schedules.retrain}"],
            "",
        )
        return RunRequest(run_key=launch.run_key(use_case.name), tags=launch.tags(use_case.name))

    return _scheduled
