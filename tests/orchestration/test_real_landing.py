"""Real landing files and simulated worlds: the simulator never overwrites the first, and a
job re-run simulates exactly the world its landing folder records."""

from __future__ import annotations

import dataclasses
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from dagster import AssetKey

from lakehouse.sources.claim import RECORD_DIR
from models.usecase import load_use_cases
from orchestration import partitions, usecase
from orchestration.ingest.assets import source_assets
from orchestration.resources import SimulatorResource
from orchestration.settings import WORLD
from tests.world import churn, ingest_assets, run_days


def _snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture
def own_files(tmp_path: Path) -> Path:
    """A landing folder of SaaS feed files that no simulator claims (as a user's own)."""
    assert run_days(tmp_path, 3, customers=20, assets=ingest_assets()[:1]).success
    shutil.rmtree(tmp_path / "landing" / RECORD_DIR)
    return tmp_path


def test_the_simulated_jobs_refuse_a_folder_of_your_own_files(own_files: Path) -> None:
    before = _snapshot(own_files / "landing")
    result = run_days(own_files, 3, customers=20, seed=99, assets=ingest_assets())
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    message = str(failure.step_failure_data.error.cause)  # type: ignore[union-attr]
    assert "no simulator wrote" in message and "SCOREHOUSE_SIMULATE=0" in message, message
    assert _snapshot(own_files / "landing") == before


def test_with_simulation_off_the_jobs_have_no_simulator_and_read_your_files(
    own_files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = dataclasses.replace(WORLD, simulate=False)
    monkeypatch.setattr(usecase, "WORLD", real)
    monkeypatch.setattr(partitions, "WORLD", real)
    defs = usecase.build_definitions(load_use_cases())
    graph = defs.resolve_asset_graph()
    landing = AssetKey(["sources", "saas_landing"])
    # The landing folder is only a dependency (an external asset): nothing materializes it.
    assert landing in graph.get_all_asset_keys() and not graph.get(landing).is_materializable
    for job in ("churn_ingest_and_features", "churn_daily_pipeline"):
        selected = defs.resolve_job_def(job).asset_layer.selected_asset_keys
        assert landing not in selected and AssetKey(["bronze", "customers"]) in selected
    before = _snapshot(own_files / "landing")
    assert run_days(own_files, 3, assets=source_assets(churn().source)).success
    assert _snapshot(own_files / "landing") == before


def test_a_rerun_simulates_the_recorded_world_not_the_environment(tmp_path: Path) -> None:
    drifted = SimulatorResource(customers=20, days=6, seed=5, drift_day=2, usage_shift=-0.5)
    assert run_days(
        tmp_path, 6, assets=ingest_assets()[:1], extra_resources={"simulator": drifted}
    ).success
    last = WORLD.start_date + timedelta(days=5)
    plain = SimulatorResource()  # the environment's world: no drift, other size and seed
    assert plain.config(last, tmp_path / "landing").identity() == drifted.config(last).identity()
    before = _snapshot(tmp_path / "landing")
    # Re-running a day with the plain settings rewrites the same bytes.
    assert run_days(tmp_path, 6, first=last, assets=ingest_assets()[:1]).success
    assert _snapshot(tmp_path / "landing") == before
