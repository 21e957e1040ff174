"""The daily pipeline job and its schedule: landing → bronze → silver → features → online."""

from __future__ import annotations

from dagster import AssetSelection, build_schedule_from_partitioned_job, define_asset_job

daily_pipeline_job = define_asset_job(
    "daily_pipeline",
    selection=AssetSelection.groups("sources", "bronze", "silver", "features")
    | AssetSelection.assets(["feast", "online_store"]),
    description="Simulate (demo only), ingest and build features for one day.",
)

daily_pipeline_schedule = build_schedule_from_partitioned_job(daily_pipeline_job, hour_of_day=2)

training_set_job = define_asset_job(
    "build_training_set",
    selection=AssetSelection.assets(["feast", "registry"], ["ml", "training_set"]),
    description="Register the feature repo and build ml.training_set from matured labels.",
)
