"""The retrain sensor of a use case: launches its retrain job when monitoring recommends it.

It reads the rows appended to the use case's verdicts table since its cursor, in order; a row with
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

from models.monitoring.policy import cooldown_allows
from models.usecase.spec import UseCase
from orchestration.resources import LakehouseResource


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


def retrain_sensor(
    use_case: UseCase,
    job_name: str,
    *,
    minimum_interval_seconds: int = 300,
) -> SensorDefinition:
    """The sensor launching ``job_name`` on the use case's retrain recommendations."""
    cooldown_days = use_case.monitoring.policy.cooldown_days
    verdicts = use_case.tables.monitoring.verdicts

    @sensor(
        name=f"{use_case.name}_monitoring_retrain",
        job_name=job_name,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=DefaultSensorStatus.STOPPED,
        description=f"Launches {job_name} when monitoring recommends a retrain "
        f"(cooldown {cooldown_days} days; pipeline faults never launch).",
    )
    def _retrain(context: SensorEvaluationContext, lakehouse: LakehouseResource) -> SensorResult:
        lake = lakehouse.get()
        cursor = SensorCursor.parse(context.cursor)
        if not lake.exists(verdicts):
            return SensorResult(skip_reason=SkipReason("no monitoring verdicts yet"))
        launches, skipped, advanced = plan_launches(lake.read(verdicts), cursor, cooldown_days)
        for message in skipped:
            context.log.info(message)
        requests = [
            RunRequest(
                run_key=f"monitoring-retrain:{row['as_of_date']}:{row['dagster_run_id']}",
                tags={
                    "scorehouse/trigger": "monitoring",
                    "scorehouse/use_case": use_case.name,
                    "scorehouse/as_of": str(row["as_of_date"]),
                    "scorehouse/reasons": "; ".join(row["reasons"])[:1000],
                },
            )
            for row in launches
        ]
        skip = None if requests else SkipReason("; ".join(skipped) or "no new recommendation")
        return SensorResult(run_requests=requests, skip_reason=skip, cursor=advanced.dump())

    return _retrain
