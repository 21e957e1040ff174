"""Churn and credit side by side in one code location: every definition of both loads, and
both worlds run through the same generated assets into one lakehouse and one Feast repo."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest
from dagster import AssetKey, DagsterInstance, Definitions, materialize
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from models.usecase import load_use_cases, project_lakehouse
from orchestration.features.assets import feature_assets, label_asset
from orchestration.ingest.assets import source_assets
from orchestration.resources import (
    FeatureStoreResource,
    LakehouseResource,
    LandingResource,
    SimulatorResource,
)
from orchestration.settings import WORLD
from orchestration.sources.assets import SIMULATORS, simulated_landing
from orchestration.usecase import build_definitions

USE_CASES = ("churn", "credit")
JOBS = ("ingest_and_features", "daily_pipeline", "weekly_retrain", "promotion_gate", "training_set")


def test_both_use_cases_load_in_one_code_location() -> None:
    from orchestration.definitions import defs as load

    defs = load()
    Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    keys = graph.get_all_asset_keys()
    use_cases = load_use_cases()
    assert set(USE_CASES) <= set(use_cases)
    for name in USE_CASES:
        use_case = use_cases[name]
        source = use_case.source
        assert AssetKey(["sources", f"{source.name}_landing"]) in keys
        for feed in source.tables.feeds:
            assert AssetKey(["bronze", feed]) in keys
        for table in source.tables.silver:
            assert AssetKey(table.split(".")) in keys
        for view in use_case.features.views:
            assert AssetKey(view.table.split(".")) in keys
        assert AssetKey(use_case.label.definition.table.split(".")) in keys
        for key in (f"{name}_model", f"{name}_promotion_gate", f"{name}_training_set"):
            assert AssetKey(["ml", key]) in keys
        for job in JOBS:
            assert defs.resolve_job_def(f"{name}_{job}") is not None
        assert defs.resolve_schedule_def(f"{name}_daily_schedule") is not None
        assert defs.resolve_sensor_def(f"{name}_monitoring_retrain") is not None
    credit_retrain = defs.resolve_schedule_def("credit_weekly_retrain_schedule")
    assert credit_retrain.cron_schedule == "0 4 1 * *"
    registry = graph.get(AssetKey(["feast", "registry"]))
    views = {view.table for name in USE_CASES for view in use_cases[name].features.views}
    assert {AssetKey(t.split(".")) for t in views} <= registry.parent_keys


def test_each_source_has_its_own_simulator_and_a_credit_job_stays_in_its_lane() -> None:
    from orchestration.definitions import defs as load

    defs = load()
    assert {"saas", "lending"} <= set(SIMULATORS)
    credit_keys = defs.resolve_job_def("credit_ingest_and_features").asset_layer
    selected = {key.to_user_string() for key in credit_keys.selected_asset_keys}
    assert "sources/lending_landing" in selected and "bronze/repayments" in selected
    assert not [key for key in selected if "customer" in key or key.startswith("sources/saas")]
    with pytest.raises(ValueError, match="no simulator 'bank'"):
        source = load_use_cases()["credit"].source
        simulated_landing(type(source)(source.tables, simulator="bank"))


def test_definitions_of_every_use_case_build_from_the_specs() -> None:
    definitions = build_definitions(load_use_cases())
    names = {job.name for job in definitions.jobs or []}
    assert {f"{name}_{job}" for name in USE_CASES for job in JOBS} <= names


def test_both_worlds_run_into_one_lakehouse_and_one_feast_repo(tmp_path: Path) -> None:
    use_cases = load_use_cases()
    assets = []
    for name in USE_CASES:
        use_case = use_cases[name]
        assets += [
            simulated_landing(use_case.source),
            *source_assets(use_case.source),
            feature_assets(use_case),
            label_asset(use_case),
        ]
    days = 12
    lake_uri = str(tmp_path / "lake")
    result = materialize(
        assets,
        resources={
            "lakehouse": LakehouseResource(uri=lake_uri),
            "landing": LandingResource(path=str(tmp_path / "landing")),
            "simulator": SimulatorResource(customers=40, loans=60, days=days, seed=3),
        },
        instance=DagsterInstance.ephemeral(),
        tags={
            ASSET_PARTITION_RANGE_START_TAG: WORLD.start_date.isoformat(),
            ASSET_PARTITION_RANGE_END_TAG: (
                WORLD.start_date + timedelta(days=days - 1)
            ).isoformat(),
        },
        raise_on_error=False,
    )
    assert result.success
    lake = project_lakehouse(lake_uri)
    last = WORLD.start_date + timedelta(days=days - 1)
    for name in USE_CASES:
        use_case = use_cases[name]
        for view in use_case.features.views:
            rows = lake.read(view.table, where=pl.col("feature_date") == last)
            assert rows.height > 10, view.table
        # Labels mature after their horizon: none yet in a 12-day world, the table exists.
        assert lake.exists(use_case.label.definition.table)
    assert lake.read("silver.loans")["loan_id"].n_unique() >= 60
    assert lake.read("silver.customers")["customer_id"].n_unique() >= 40
    store = FeatureStoreResource(lakehouse_uri=lake_uri)
    store.apply()
    services = {s.name for s in store.get().list_feature_services()}
    assert {"churn_v1", "credit_v1"} <= services
    online = store.get().get_online_features(
        features=store.get().get_feature_service("credit_v1"),
        entity_rows=[{"loan_id": lake.read("features.loan_terms")["loan_id"][0]}],
    )
    assert set(online.to_dict()) >= {"loan_id", "current_dpd", "amount_to_income"}
