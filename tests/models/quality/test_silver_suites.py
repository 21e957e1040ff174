"""The silver GX checks on real simulated data, run inside partitioned ingest runs."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from dagster import AssetCheckEvaluation, DagsterInstance, materialize
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from orchestration.resources import LakehouseResource, LandingResource, SimulatorResource
from orchestration.settings import WORLD
from orchestration.training.checks import quality_checks
from tests.world import churn, ingest_assets


def _ingest(tmp_path: Path, first: date, last: date) -> dict[str, AssetCheckEvaluation]:
    use_case = churn()
    checks = quality_checks(use_case)
    silver = [check for table, check in checks.items() if table.startswith("silver.")]
    result = materialize(
        [*ingest_assets(use_case), *silver],
        resources={
            "lakehouse": LakehouseResource(uri=str(tmp_path / "lake")),
            "landing": LandingResource(path=str(tmp_path / "landing")),
            "simulator": SimulatorResource(customers=80, days=10, seed=3),
        },
        instance=DagsterInstance.ephemeral(),
        tags={
            ASSET_PARTITION_RANGE_START_TAG: first.isoformat(),
            ASSET_PARTITION_RANGE_END_TAG: last.isoformat(),
        },
        raise_on_error=False,
    )
    assert result.success
    return {
        f"{e.asset_key.to_user_string()}:{e.check_name}": e
        for e in result.get_asset_check_evaluations()
    }


def test_silver_checks_pass_on_simulated_days_and_compare_versions(tmp_path: Path) -> None:
    first = WORLD.start_date
    checks = _ingest(tmp_path, first, first + timedelta(days=5))
    assert len(checks) == 8
    failed = {k: e.metadata["results"].value for k, e in checks.items() if not e.passed}
    assert not [k for k in failed if k.endswith("gx_critical")], failed
    usage = checks["silver/usage_daily:gx_critical"].metadata
    assert "freshness not evaluated" not in usage["notes"].value
    assert "row-count change not evaluated" in usage["notes"].value  # created by this run

    later = _ingest(tmp_path, first + timedelta(days=6), first + timedelta(days=7))
    assert all(e.passed for k, e in later.items() if k.endswith("gx_critical"))
    usage = later["silver/usage_daily:gx_critical"].metadata
    assert usage["previous_version"].value == usage["table_version"].value - 1
