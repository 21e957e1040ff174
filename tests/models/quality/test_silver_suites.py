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


def test_check_links_of_every_run_keep_resolving(tmp_path: Path) -> None:
    first = WORLD.start_date
    runs = [
        _ingest(tmp_path, first, first + timedelta(days=1)),
        _ingest(tmp_path, first + timedelta(days=2), first + timedelta(days=3)),
    ]
    evaluations = [e for checks in runs for e in checks.values()]
    links = [
        Path(e.metadata[name].value)
        for e in evaluations
        for name in ("data_docs", "validation_results", "data_docs_index")
    ]
    assert len(links) == 3 * 16 and all(path.is_file() for path in links)
    docs = [Path(e.metadata["data_docs"].value) for e in evaluations]
    assert len(set(docs)) == 8  # 4 tables x 2 runs; critical and warning share a validation
    assert len({path.parent.parent.name for path in docs}) == 2  # a folder per Dagster run
    [index_page] = {Path(e.metadata["data_docs_index"].value) for e in evaluations}
    index = index_page.read_text()
    for page in docs:
        assert page.relative_to(index_page.parent).as_posix() in index
        assert "http" not in page.read_text()
    assert "http" not in index
