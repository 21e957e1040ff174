"""All Dagster definitions load: every use case's assets, jobs, schedules and sensor."""

from __future__ import annotations

import warnings

import pytest
from dagster import AssetKey, Definitions

from orchestration.usecase import build_definitions
from tests.world import churn


def test_definitions_load_and_validate() -> None:
    from orchestration.definitions import defs as load

    defs = load()
    Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    keys = graph.get_all_asset_keys()
    use_case = churn()
    assert AssetKey(["sources", "saas_landing"]) in keys
    for feed in use_case.source.tables.feeds:
        assert AssetKey(["bronze", feed]) in keys
    for table, flow in use_case.source.tables.flows.items():
        key = AssetKey(table.split("."))
        assert key in keys
        assert graph.get(key).parent_keys == {AssetKey(flow.bronze.split("."))}
    for view in use_case.features.views:
        assert AssetKey(view.table.split(".")) in keys
    jobs = ("ingest_and_features", "daily_pipeline", "weekly_retrain", "promotion_gate")
    for job in (*jobs, "training_set"):
        assert defs.resolve_job_def(f"churn_{job}") is not None
    for schedule in ("daily_schedule", "weekly_retrain_schedule", "promotion_gate_schedule"):
        assert defs.resolve_schedule_def(f"churn_{schedule}") is not None
    assert defs.resolve_sensor_def("churn_monitoring_retrain").job_name == "churn_weekly_retrain"
    gate = defs.resolve_sensor_def("churn_promotion_gate_sensor")
    assert gate.job_name == "churn_promotion_gate"
    # Nothing promotes in the training run: the retrain job holds no promotion gate.
    retrain = defs.resolve_job_def("churn_weekly_retrain")
    assert AssetKey(["ml", "churn_promotion_gate"]) not in retrain.asset_layer.executable_asset_keys


def test_definitions_raise_no_beta_or_deprecation_warnings() -> None:
    from models.usecase import load_use_cases

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        defs = build_definitions(load_use_cases())
        Definitions.validate_loadable(defs)
    names = [type(w.message).__name__ for w in caught]
    assert not [n for n in names if "Beta" in n or "Deprecat" in n or "Preview" in n], names


def test_simulated_partitions_end_with_the_world() -> None:
    from orchestration.definitions import defs as load
    from orchestration.settings import WORLD

    job = load().resolve_job_def("churn_daily_pipeline")
    keys = job.partitions_def.get_partition_keys()
    assert keys[0] == WORLD.start_date.isoformat()
    assert keys[-1] == WORLD.end_date.isoformat()


def test_the_lending_world_may_keep_its_own_calendar(monkeypatch: pytest.MonkeyPatch) -> None:
    """A three-year lender beside a 280-day SaaS world: each source's partitions are its world's
    days (``SCOREHOUSE_SIM_LENDING_START_DATE``, ``_LENDING_DAYS``)."""
    from datetime import date

    from models.usecase import load_use_cases
    from orchestration import partitions
    from orchestration.settings import WorldSettings

    monkeypatch.setenv("SCOREHOUSE_START_DATE", "2025-01-01")
    monkeypatch.setenv("SCOREHOUSE_SIM_DAYS", "280")
    monkeypatch.setenv("SCOREHOUSE_SIM_LENDING_START_DATE", "2023-01-01")
    monkeypatch.setenv("SCOREHOUSE_SIM_LENDING_DAYS", "950")
    world = WorldSettings.from_env()
    monkeypatch.setattr(partitions, "WORLD", world)
    use_cases = load_use_cases()
    for name, first, last in [
        ("churn", date(2025, 1, 1), date(2025, 10, 7)),
        ("credit", date(2023, 1, 1), date(2025, 8, 7)),
    ]:
        keys = partitions.source_partitions(use_cases[name].source).get_partition_keys()
        assert (keys[0], keys[-1]) == (first.isoformat(), last.isoformat()), name


def test_workspace_points_at_the_definitions() -> None:
    from pathlib import Path

    import yaml

    workspace = yaml.safe_load((Path(__file__).parents[2] / "workspace.yaml").read_text())
    module = workspace["load_from"][0]["python_module"]["module_name"]
    assert module == "orchestration.definitions"
