"""All Dagster definitions load, and the asset graph is what docs/architecture.md describes."""

from __future__ import annotations

from dagster import AssetKey, Definitions

from lakehouse.landing import LANDING_SOURCES
from lakehouse.silver import SILVER_FLOWS


def test_definitions_load_and_validate() -> None:
    from orchestration.definitions import defs

    Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    keys = graph.get_all_asset_keys()
    assert AssetKey(["sources", "simulated_landing"]) in keys
    for source in LANDING_SOURCES:
        assert AssetKey(["bronze", source]) in keys
    for table, flow in SILVER_FLOWS.items():
        key = AssetKey(table.split("."))
        assert key in keys
        assert graph.get(key).parent_keys == {AssetKey(flow.bronze.split("."))}
    for job in ("ingest_and_features", "daily_pipeline", "weekly_retrain", "build_training_set"):
        assert defs.get_job_def(job) is not None
    assert defs.get_schedule_def("daily_pipeline_schedule") is not None
    assert defs.get_schedule_def("weekly_retrain_schedule") is not None


def test_workspace_points_at_the_definitions() -> None:
    from pathlib import Path

    import yaml

    workspace = yaml.safe_load((Path(__file__).parents[2] / "workspace.yaml").read_text())
    module = workspace["load_from"][0]["python_module"]["module_name"]
    assert module == "orchestration.definitions"
