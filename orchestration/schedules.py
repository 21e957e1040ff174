"""Cross-domain jobs and the daily schedule.

* ``ingest_and_features``: landing → bronze → silver → features/labels → online features.
* ``daily_pipeline``: the same, then batch scoring and the online predictions (scheduled).
* ``build_training_set``: ``feast apply`` + ``ml.training_set`` (the weekly retrain job in
  ``orchestration/training`` rebuilds it too, before its blocking checks).
"""

from __future__ import annotations

from dagster import AssetSelection, build_schedule_from_partitioned_job, define_asset_job

_INGEST_AND_FEATURES = AssetSelection.groups("sources", "bronze", "silver", "features") | (
    AssetSelection.assets(["feast", "online_store"])
)

ingest_and_features_job = define_asset_job(
    "ingest_and_features",
    selection=_INGEST_AND_FEATURES,
    description="Simulate (demo only), ingest, build features and labels, refresh online features.",
)

daily_pipeline_job = define_asset_job(
    "daily_pipeline",
    selection=_INGEST_AND_FEATURES | AssetSelection.groups("scoring", "monitoring"),
    description=(
        "One day end to end: ingest → features → online features → batch scoring with the "
        "champion → online predictions → monitoring (drift, diagnosis, performance, report)."
    ),
)

daily_pipeline_schedule = build_schedule_from_partitioned_job(daily_pipeline_job, hour_of_day=2)

training_set_job = define_asset_job(
    "build_training_set",
    selection=AssetSelection.assets(["feast", "registry"], ["ml", "training_set"]),
    description="Register the feature repo and build ml.training_set from matured labels.",
)
