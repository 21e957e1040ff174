"""Tiny simulated worlds built through the real Dagster assets, shared by integration tests."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from dagster import AssetsDefinition, DagsterInstance, ExecuteInProcessResult, materialize
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from models.usecase import UseCase, load_use_cases
from orchestration.features.assets import feature_assets, label_asset
from orchestration.ingest.assets import source_assets
from orchestration.resources import LakehouseResource, LandingResource, SimulatorResource
from orchestration.settings import WORLD
from orchestration.sources.assets import simulated_landing


def churn() -> UseCase:
    """The built-in churn use case (as loaded for the current SCOREHOUSE_HOME)."""
    return load_use_cases()["churn"]


def ingest_assets(use_case: UseCase | None = None) -> list[AssetsDefinition]:
    """Simulated landing, bronze and silver of the churn use case's source."""
    source = (use_case or churn()).source
    return [simulated_landing(source), *source_assets(source)]


def churn_feature_assets(use_case: UseCase | None = None) -> list[AssetsDefinition]:
    use_case = use_case or churn()
    return [feature_assets(use_case), label_asset(use_case)]


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
        assets if assets is not None else [*ingest_assets(), *churn_feature_assets()],
        resources=resources,
        instance=DagsterInstance.ephemeral(),
        tags={
            ASSET_PARTITION_RANGE_START_TAG: start.isoformat(),
            ASSET_PARTITION_RANGE_END_TAG: last.isoformat(),
        },
        raise_on_error=False,
    )
