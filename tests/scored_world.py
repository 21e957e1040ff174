"""A tiny simulated world built through the real assets, with a trained, promoted champion
and scored days — shared by the scoring and monitoring tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
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
    model = train(lake.read("ml.training_set"), replace(PARAMS, seed=seed))
    context = RunContext(training_set_version=lake.version("ml.training_set") or 0)
    return registry.log_training_run(model, context).version


@contextmanager
def scored_world(
    root: Path, *, seed: int, extra_days: tuple[date, ...] = ()
) -> Iterator[ScoredWorld]:
    """Build the world under ``root`` and score its last two days (and ``extra_days``).

    The world's SCOREHOUSE_HOME (MLflow, Feast) is set while the context is open.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SCOREHOUSE_HOME", str(root / "home"))
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        patch.delenv("SCOREHOUSE_LAKEHOUSE_URI", raising=False)
        store = FeatureStoreResource(lakehouse_uri=str(root / "lake"))
        extra = {"feature_store": store}
        assert run_days(root, DAYS, customers=70, seed=seed, extra_resources=extra).success
        assert materialize(
            [feast_registry], resources=extra, instance=DagsterInstance.ephemeral()
        ).success
        lake = Lakehouse(root / "lake")
        # Labels mature up to as-of day 45: from day 1 the 30-day gaps still leave train days.
        built = build_training_set(
            lake, store.get(), first_as_of=WORLD.start_date + timedelta(days=1), every_days=1
        )
        lake.replace("ml.training_set", built.frame)
        registry = ModelRegistry()
        champion = train_and_register(lake, registry)
        registry.set_alias(CHAMPION, champion)
        days = [WORLD.start_date + timedelta(days=DAYS - d) for d in (2, 1)]
        world = ScoredWorld(root, lake, registry, champion, days)
        for day in [*extra_days, *days]:
            world.score(day)
        yield world
