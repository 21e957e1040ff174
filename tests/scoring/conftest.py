"""A tiny world with features, a trained and promoted champion, and scored days."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
from dagster import DagsterInstance, materialize

from lakehouse.storage import Lakehouse
from lakehouse.training_set import build_training_set
from models.registry import CHAMPION, ModelRegistry, RunContext
from models.training import TrainingParams, train
from orchestration.features.feast_assets import feast_registry
from orchestration.resources import FeatureStoreResource, LakehouseResource
from orchestration.scoring.assets import prediction_online, predictions
from orchestration.settings import WORLD
from tests.world import run_days

DAYS = 75
PARAMS = TrainingParams(nthread=1, num_boost_round=40, validation_days=4, test_days=4, min_rows=200)


@dataclass
class ScoredWorld:
    root: Path
    lake: Lakehouse
    registry: ModelRegistry
    champion: str
    days: list[date]

    def resources(self) -> dict[str, object]:
        return {
            "lakehouse": LakehouseResource(uri=str(self.lake.uri)),
            "feature_store": FeatureStoreResource(lakehouse_uri=str(self.lake.uri)),
        }

    def score(self, day: date, raise_on_error: bool = True, run_config: dict | None = None):
        return materialize(
            [predictions, prediction_online],
            resources=self.resources(),
            instance=DagsterInstance.ephemeral(),
            partition_key=day.isoformat(),
            raise_on_error=raise_on_error,
            run_config=run_config,
        )


def train_and_register(lake: Lakehouse, registry: ModelRegistry, seed: int = 0) -> str:
    """Train on the world's training set, register the version, return it."""
    from dataclasses import replace

    frame = lake.read("ml.training_set")
    model = train(frame, replace(PARAMS, seed=seed))
    context = RunContext(training_set_version=lake.version("ml.training_set") or 0)
    return registry.log_training_run(model, context).version


@pytest.fixture(scope="module")
def scored_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScoredWorld]:
    root = tmp_path_factory.mktemp("scoring-world")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SCOREHOUSE_HOME", str(root / "home"))
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        patch.delenv("SCOREHOUSE_LAKEHOUSE_URI", raising=False)
        store = FeatureStoreResource(lakehouse_uri=str(root / "lake"))
        assert run_days(
            root, DAYS, customers=70, seed=21, assets=None, extra_resources={"feature_store": store}
        ).success
        lake = Lakehouse(root / "lake")
        assert materialize(
            [feast_registry],
            resources={"feature_store": store},
            instance=DagsterInstance.ephemeral(),
        ).success
        # Labels mature up to as-of day 45: from day 1 the 30-day gaps still leave train days.
        built = build_training_set(
            lake, store.get(), first_as_of=WORLD.start_date + timedelta(days=1), every_days=1
        )
        lake.replace("ml.training_set", built.frame)
        registry = ModelRegistry()
        champion = train_and_register(lake, registry)
        registry.set_alias(CHAMPION, champion)
        days = [
            WORLD.start_date + timedelta(days=DAYS - 2),
            WORLD.start_date + timedelta(days=DAYS - 1),
        ]
        world = ScoredWorld(root, lake, registry, champion, days)
        for day in days:
            world.score(day)
        yield world


@pytest.fixture(autouse=True)
def world_home(
    scorehouse_home: Path, scored_world: ScoredWorld, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Tests of this package use the world's SCOREHOUSE_HOME (registry, Feast, MLflow)."""
    home = scored_world.root / "home"
    monkeypatch.setenv("SCOREHOUSE_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return home
