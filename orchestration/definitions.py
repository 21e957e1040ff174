"""All Scorehouse Dagster definitions. Thin: each domain folder owns its assets and schedules."""

from __future__ import annotations

from dagster import Definitions

from orchestration.features.assets import churn_labels, customer_features
from orchestration.features.feast_assets import feast_online_store, feast_registry, training_set
from orchestration.ingest.assets import bronze_assets, silver_assets
from orchestration.monitoring import monitoring_assets, retrain_sensor
from orchestration.resources import default_resources
from orchestration.schedules import (
    daily_pipeline_job,
    daily_pipeline_schedule,
    ingest_and_features_job,
    training_set_job,
)
from orchestration.scoring.assets import prediction_online, predictions
from orchestration.sources.assets import simulated_landing
from orchestration.training import (
    training_assets,
    training_checks,
    weekly_retrain_job,
    weekly_retrain_schedule,
)

defs = Definitions(
    assets=[
        simulated_landing,
        *bronze_assets,
        *silver_assets,
        customer_features,
        churn_labels,
        feast_registry,
        feast_online_store,
        training_set,
        *training_assets,
        predictions,
        prediction_online,
        *monitoring_assets,
    ],
    asset_checks=training_checks,
    jobs=[ingest_and_features_job, daily_pipeline_job, training_set_job, weekly_retrain_job],
    schedules=[daily_pipeline_schedule, weekly_retrain_schedule],
    sensors=[retrain_sensor],
    resources=default_resources(),
)
