"""All Scorehouse Dagster definitions. Thin: each domain folder owns its assets and schedules."""

from __future__ import annotations

from dagster import Definitions

from orchestration.features.assets import churn_labels, customer_features
from orchestration.features.feast_assets import feast_online_store, feast_registry, training_set
from orchestration.ingest.assets import bronze_assets, silver_assets
from orchestration.resources import default_resources
from orchestration.schedules import daily_pipeline_job, daily_pipeline_schedule, training_set_job
from orchestration.sources.assets import simulated_landing

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
    ],
    jobs=[daily_pipeline_job, training_set_job],
    schedules=[daily_pipeline_schedule],
    resources=default_resources(),
)
