"""The daily pipeline job and its schedule: landing → bronze → silver → features, per day."""

from __future__ import annotations

from dagster import AssetSelection, build_schedule_from_partitioned_job, define_asset_job

from orchestration.partitions import daily_partitions

daily_pipeline_job = define_asset_job(
    "daily_pipeline",
    selection=AssetSelection.groups("sources", "bronze", "silver", "features"),
    partitions_def=daily_partitions,
    description="Simulate (demo only), ingest and build features for one day.",
)

daily_pipeline_schedule = build_schedule_from_partitioned_job(daily_pipeline_job, hour_of_day=2)
