"""All Scorehouse Dagster definitions. Thin: each domain folder owns its assets and schedules."""

from __future__ import annotations

from dagster import Definitions

from orchestration.ingest.assets import bronze_assets, silver_assets
from orchestration.ingest.schedules import daily_ingest_job, daily_ingest_schedule
from orchestration.resources import default_resources
from orchestration.sources.assets import simulated_landing

defs = Definitions(
    assets=[simulated_landing, *bronze_assets, *silver_assets],
    jobs=[daily_ingest_job],
    schedules=[daily_ingest_schedule],
    resources=default_resources(),
)
