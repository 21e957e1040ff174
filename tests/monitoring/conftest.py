"""A tiny scored world for the monitoring tests (the pattern of ``tests/scoring/conftest.py``):
features and labels, a champion trained with the default 30-day gap, two scored recent days,
and an earlier scored day whose labels have matured (performance by vintage)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta

import pytest
from dagster import DagsterInstance, ExecuteInProcessResult, materialize

from lakehouse.storage import Lakehouse
from lakehouse.training_set import build_training_set
from models.registry import CHAMPION, ModelRegistry, RunContext
from models.training import TrainingParams, train
from orchestration.features.feast_assets import feast_registry
from orchestration.monitoring import monitoring_assets
from orchestration.resources import FeatureStoreResource, LakehouseResource
from orchestration.settings import WORLD
from tests.scoring.conftest import ScoredWorld
from tests.world import run_days

DAYS = 75
START = WORLD.start_date
VINTAGE = START + timedelta(days=40)  # its labels (as-of day 41) matured on day 70
PARAMS = TrainingParams(nthread=1, num_boost_round=40, validation_days=4, test_days=4, min_rows=200)


def run_monitoring(world: ScoredWorld, day: date, **config: object) -> ExecuteInProcessResult:
    """Materialize the monitoring assets for one partition (``config``: MonitoringConfig)."""
    ops = {asset.op.name: {"config": dict(config)} for asset in monitoring_assets}
    return materialize(
        monitoring_assets,
        resources={"lakehouse": LakehouseResource(uri=str(world.lake.uri))},
        instance=DagsterInstance.ephemeral(),
        partition_key=day.isoformat(),
        run_config={"ops": ops} if config else None,
    )


@pytest.fixture(scope="module")
def monitored_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScoredWorld]:
    root = tmp_path_factory.mktemp("monitoring-world")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SCOREHOUSE_HOME", str(root / "home"))
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        patch.delenv("SCOREHOUSE_LAKEHOUSE_URI", raising=False)
        store = FeatureStoreResource(lakehouse_uri=str(root / "lake"))
        extra = {"feature_store": store}
        assert run_days(root, DAYS, customers=70, seed=21, extra_resources=extra).success
        assert materialize(
            [feast_registry], resources=extra, instance=DagsterInstance.ephemeral()
        ).success
        lake = Lakehouse(root / "lake")
        # Labels mature up to as-of day 45: from day 1 the 30-day gap still leaves train days.
        built = build_training_set(
            lake, store.get(), first_as_of=START + timedelta(days=1), every_days=1
        )
        lake.replace("ml.training_set", built.frame)
        registry = ModelRegistry()
        model = train(lake.read("ml.training_set"), replace(PARAMS, seed=0))
        context = RunContext(training_set_version=lake.version("ml.training_set") or 0)
        champion = registry.log_training_run(model, context).version
        registry.set_alias(CHAMPION, champion)
        days = [START + timedelta(days=DAYS - 2), START + timedelta(days=DAYS - 1)]
        world = ScoredWorld(root, lake, registry, champion, days)
        for day in [VINTAGE, *days]:
            world.score(day)
        assert run_monitoring(world, days[-1]).success
        yield world


@pytest.fixture
def world_home(monitored_world: ScoredWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point SCOREHOUSE_HOME (MLflow, Feast, reports) at the world's."""
    monkeypatch.setenv("SCOREHOUSE_HOME", str(monitored_world.root / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
