"""A tiny simulated churn world built through the real assets, with a trained, promoted champion
— built once per session (``build_template``) and copied for each test module that uses it,
so modules may change their copy without affecting one another."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path

import pytest
from dagster import DagsterInstance, materialize

from lakehouse.features.training_set import build_training_set
from lakehouse.storage import Lakehouse
from models.lifecycle.registry import CANDIDATE, CHAMPION, STATE_TAG, ModelRegistry, RunContext
from models.training.params import TrainingParams
from models.training.train import train
from models.usecase import UseCase, load_use_cases
from orchestration.features.feast_assets import feast_registry
from orchestration.resources import (
    STEP_IO,
    FeatureStoreResource,
    LakehouseResource,
    ModelRegistryResource,
    StepOutputIOManager,
)
from orchestration.scoring.assets import scoring_assets
from orchestration.settings import WORLD
from tests.world import churn, run_days

DAYS = 75
SEED = 21
PARAMS = TrainingParams(nthread=1, num_boost_round=40, validation_days=4, test_days=4, min_rows=200)
SCORED_DAYS = [WORLD.start_date + timedelta(days=DAYS - d) for d in (2, 1)]


@dataclass
class ScoredWorld:
    root: Path
    lake: Lakehouse
    registry: ModelRegistry
    use_case: UseCase
    champion: str
    days: list[date]

    def resources(self) -> dict[str, object]:
        return {
            "lakehouse": LakehouseResource(uri=str(self.lake.uri)),
            "feature_store": FeatureStoreResource(lakehouse_uri=str(self.lake.uri)),
            "model_registry": ModelRegistryResource(),
            STEP_IO: StepOutputIOManager(),
        }

    def score(self, day: date, raise_on_error: bool = True, run_config: dict | None = None):
        return materialize(
            scoring_assets(self.use_case),
            resources=self.resources(),
            instance=DagsterInstance.ephemeral(),
            partition_key=day.isoformat(),
            raise_on_error=raise_on_error,
            run_config=run_config,
        )


def train_and_register(
    lake: Lakehouse, registry: ModelRegistry, use_case: UseCase, seed: int = 0
) -> str:
    """Train on the world's training set, register the version, return it."""
    table = use_case.tables.training_set
    model = train(lake.read(table), use_case.design, replace(PARAMS, seed=seed))
    context = RunContext(
        training_set_version=lake.version(table) or 0,
        feature_service=use_case.features.service,
        use_case=use_case.name,
    )
    return registry.log_training_run(model, use_case.encoding, context).version


def make_champion(registry: ModelRegistry, version: str) -> None:
    """Make ``version`` the champion directly (a test's starting state, without the gate)."""
    registry.set_alias(CHAMPION, version)
    registry.delete_alias(CANDIDATE)
    registry.tag_version(version, {STATE_TAG: CHAMPION})


@contextmanager
def world_home(root: Path) -> Iterator[None]:
    """The world's SCOREHOUSE_HOME (MLflow, Feast) while the context is open."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SCOREHOUSE_HOME", str(root / "home"))
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        patch.delenv("SCOREHOUSE_LAKEHOUSE_URI", raising=False)
        yield


def build_template(root: Path) -> None:
    """Ingest, features, labels, Feast registry, a training set and a champion under ``root``."""
    with world_home(root):
        use_case = churn()
        store = FeatureStoreResource(lakehouse_uri=str(root / "lake"))
        extra = {"feature_store": store}
        assert run_days(root, DAYS, customers=70, seed=SEED, extra_resources=extra).success
        registry_asset = feast_registry([use_case])
        assert materialize(
            [registry_asset], resources=extra, instance=DagsterInstance.ephemeral()
        ).success
        lake = use_case_lake(root)
        # Labels mature up to as-of day 45: from day 1 the 30-day gaps still leave train days.
        table = use_case.tables.training_set
        built = build_training_set(
            lake,
            store.get(),
            labels=use_case.label.definition,
            spec=use_case.table_spec(table),
            feature_service=use_case.features.service,
            first_as_of=WORLD.start_date + timedelta(days=1),
            every_days=1,
        )
        lake.replace(table, built.frame)
        registry = ModelRegistry(use_case.model_name)
        make_champion(registry, train_and_register(lake, registry, use_case))


def _feast_state(folder: str, names: list[str]) -> list[str]:
    return ["feast"] if Path(folder).name == "home" else []


def use_case_lake(root: Path) -> Lakehouse:
    return load_use_cases().lakehouse(root / "lake")


@contextmanager
def scored_world(
    template: Path, root: Path, *, extra_days: tuple[date, ...] = ()
) -> Iterator[ScoredWorld]:
    """A copy of the template under ``root``, its last two days (and ``extra_days``) scored.

    Feast's state is not copied but applied afresh: its registry records the online store's
    path, and an apply in the copy would drop the template's tables.
    """
    shutil.copytree(template, root, dirs_exist_ok=True, ignore=_feast_state)
    with world_home(root):
        FeatureStoreResource(lakehouse_uri=str(root / "lake")).apply()
        use_case = churn()
        registry = ModelRegistry(use_case.model_name)
        champion = registry.alias(CHAMPION)
        assert champion is not None
        world = ScoredWorld(
            root, use_case_lake(root), registry, use_case, str(champion.version), SCORED_DAYS
        )
        for day in [*extra_days, *SCORED_DAYS]:
            world.score(day)
        yield world
