"""The scored tiny world of ``tests/scored_world.py`` for the monitoring tests:
features and labels, a champion trained with the default 30-day gap, two scored recent days,
and an earlier scored day whose labels have matured (performance by vintage)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from dagster import DagsterInstance, ExecuteInProcessResult, materialize

from orchestration.monitoring.assets import monitoring_assets
from orchestration.settings import WORLD
from tests.scored_world import ScoredWorld, scored_world

START = WORLD.start_date
VINTAGE = START + timedelta(days=40)  # its labels (as-of day 41) matured on day 70


def run_monitoring(world: ScoredWorld, day: date, **config: object) -> ExecuteInProcessResult:
    """Materialize the monitoring assets for one partition (``config``: MonitoringConfig)."""
    assets = monitoring_assets(world.use_case)
    ops = {asset.op.name: {"config": dict(config)} for asset in assets}
    return materialize(
        assets,
        resources=world.resources(),
        instance=DagsterInstance.ephemeral(),
        partition_key=day.isoformat(),
        run_config={"ops": ops} if config else None,
    )


@pytest.fixture(scope="module")
def monitored_world(
    scored_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ScoredWorld]:
    root = tmp_path_factory.mktemp("monitoring-world")
    with scored_world(scored_template, root, extra_days=(VINTAGE,)) as world:
        assert run_monitoring(world, world.days[-1]).success
        yield world


@pytest.fixture
def world_home(monitored_world: ScoredWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point SCOREHOUSE_HOME (MLflow, Feast, reports) at the world's."""
    monkeypatch.setenv("SCOREHOUSE_HOME", str(monitored_world.root / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
