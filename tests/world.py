"""A tiny simulated world built through the real Dagster assets, shared by integration tests."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from dagster import AssetsDefinition, DagsterInstance, ExecuteInProcessResult, materialize
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from orchestration.features.assets import churn_labels, customer_features
from orchestration.ingest.assets import bronze_assets, silver_assets
from orchestration.resources import LakehouseResource, LandingResource, SimulatorResource
from orchestration.settings import WORLD
from orchestration.sources.assets import simulated_landing

INGEST_ASSETS = [simulated_landing, *bronze_assets, *silver_assets]
FEATURE_ASSETS = [customer_features, churn_labels]


def run_days(
    root: Path,
    days: int,
    *,
    customers: int = 60,
    seed: int = 3,
    first: date | None = None,
    assets: list[AssetsDefinition] | None = None,
    extra_resources: dict[str, object] | None = None,
) -> ExecuteInProcessResult:
    """Materialize ``assets`` (default: ingest + features) over ``days`` days from the start."""
    start = first or WORLD.start_date
    last = WORLD.start_date + timedelta(days=days - 1)
    resources = {
        "lakehouse": LakehouseResource(uri=str(root / "lake")),
        "landing": LandingResource(path=str(root / "landing")),
        "simulator": SimulatorResource(customers=customers, days=days, seed=seed),
        **(extra_resources or {}),
    }
    return materialize(
        assets if assets is not None else [*INGEST_ASSETS, *FEATURE_ASSETS],
        resources=resources,
        instance=DagsterInstance.ephemeral(),
        tags={
            ASSET_PARTITION_RANGE_START_TAG: start.isoformat(),
            ASSET_PARTITION_RANGE_END_TAG: last.isoformat(),
        },
        raise_on_error=False,
    )
