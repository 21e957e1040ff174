"""All Scorehouse Dagster definitions. Thin: each domain folder owns its assets and schedules."""

from __future__ import annotations

from dagster import Definitions

from orchestration.features.assets import churn_labels, customer_features
from orchestration.ingest.assets import bronze_assets, silver_assets
from orchestration.resources import default_resources
from orchestration.schedules import daily_pipeline_job, daily_pipeline_schedule
from orchestration.sources.assets import simulated_landing

defs = Definitions(
    assets=[simulated_landing, *bronze_assets, *silver_assets, customer_features, churn_labels],
    jobs=[daily_pipeline_job],
    schedules=[daily_pipeline_schedule],
    resources=default_resources(),
)
