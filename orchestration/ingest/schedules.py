"""The daily ingest job and its schedule (landing → bronze → silver for yesterday's files)."""

from __future__ import annotations

from dagster import AssetSelection, build_schedule_from_partitioned_job, define_asset_job

from orchestration.partitions import daily_partitions

daily_ingest_job = define_asset_job(
    "daily_ingest",
    selection=AssetSelection.groups("sources", "bronze", "silver"),
    partitions_def=daily_partitions,
    description="Simulate (demo only) and ingest one day: landing files → bronze → silver.",
)

daily_ingest_schedule = build_schedule_from_partitioned_job(daily_ingest_job, hour_of_day=2)
