"""The retrain sensor: launches ``weekly_retrain`` when a monitoring run recommends it.

It reads the rows appended to ``monitoring.verdicts`` since its cursor, in order; a row with
``retrain_recommended`` launches the job unless the last launch was within the cooldown
(``policy.cooldown_allows``, counted in as-of days). The recommendation itself was made by
``policy.assess`` (pipeline faults never recommend). Cursor: JSON ``{"seen": <computed_at of
the last row read>, "last_launch": <as-of date of the last launch>}``.
"""

import json
from dataclasses import asdict, dataclass
from datetime import date, datetime

import polars as pl
from dagster import (
    DefaultSensorStatus,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from lakehouse.tables import MONITORING_VERDICTS
from models.monitoring.policy import RetrainPolicy, cooldown_allows
from orchestration.resources import LakehouseResource

RETRAIN_JOB = "weekly_retrain"


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


def plan_launches(
    verdicts: pl.DataFrame, cursor: SensorCursor, cooldown_days: int
) -> tuple[list[dict], list[str], SensorCursor]:
    """The verdict rows to launch for, skip messages, and the advanced cursor (pure)."""
    last = date.fromisoformat(cursor.last_launch) if cursor.last_launch else None
    launches, skipped = [], []
    rows = verdicts.sort("computed_at")
    if cursor.seen:
        rows = rows.filter(pl.col("computed_at") > datetime.fromisoformat(cursor.seen))
    for row in rows.filter(pl.col("retrain_recommended")).iter_rows(named=True):
        if cooldown_allows(row["as_of_date"], last, cooldown_days):
            launches.append(row)
            last = row["as_of_date"]
        else:
            skipped.append(f"{row['as_of_date']}: retrain recommended, in cooldown since {last}")
    seen = rows["computed_at"].max() if rows.height else None
    return (
        launches,
        skipped,
        SensorCursor(
            seen.isoformat() if seen is not None else cursor.seen,
            last.isoformat() if last else None,
        ),
    )


def build_retrain_sensor(
    job_name: str = RETRAIN_JOB,
    *,
    cooldown_days: int = RetrainPolicy.cooldown_days,
    name: str = "monitoring_retrain",
    minimum_interval_seconds: int = 300,
) -> SensorDefinition:
    """A sensor launching ``job_name`` on monitoring's retrain recommendations."""

    @sensor(
        name=name,
        job_name=job_name,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=DefaultSensorStatus.STOPPED,
        description=f"Launches {job_name} when monitoring recommends a retrain "
        f"(cooldown {cooldown_days} days; pipeline faults never launch).",
    )
    def _retrain(context: SensorEvaluationContext, lakehouse: LakehouseResource) -> SensorResult:
        lake = lakehouse.get()
        cursor = SensorCursor.parse(context.cursor)
        if not lake.exists(MONITORING_VERDICTS.name):
            return SensorResult(skip_reason=SkipReason("no monitoring verdicts yet"))
        verdicts = lake.read(MONITORING_VERDICTS.name)
        launches, skipped, advanced = plan_launches(verdicts, cursor, cooldown_days)
        for message in skipped:
            context.log.info(message)
        requests = [
            RunRequest(
                run_key=f"monitoring-retrain:{row['as_of_date']}:{row['dagster_run_id']}",
                tags={
                    "scorehouse/trigger": "monitoring",
                    "scorehouse/as_of": str(row["as_of_date"]),
                    "scorehouse/reasons": "; ".join(row["reasons"])[:1000],
                },
            )
            for row in launches
        ]
        skip = None if requests else SkipReason("; ".join(skipped) or "no new recommendation")
        return SensorResult(run_requests=requests, skip_reason=skip, cursor=advanced.dump())

    return _retrain


retrain_sensor = build_retrain_sensor()
