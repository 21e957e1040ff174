"""A served world: a copy of the session's scored churn world (``tests/scored_world.py``) with
its last day's features materialized online and two more registered model versions (for
canary, shadow and promotion tests), and the scoring service over it, in process."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from feature_repo.config import feature_store
from models.lifecycle.registry import CHAMPION
from orchestration.features.feast_assets import materialize_window
from orchestration.serving.app import create_app
from orchestration.serving.holder import CANARY, SHADOW
from orchestration.serving.service import Service
from orchestration.serving.settings import ServiceSettings
from tests.scored_world import ScoredWorld, train_and_register
from tests.scored_world import scored_world as build


@dataclass
class ServedWorld:
    world: ScoredWorld
    home: Path
    versions: list[str]  # champion first, then two more

    def settings(self, **overrides: object) -> ServiceSettings:
        spool = self.world.root / "spool" / str(overrides.pop("spool", "default"))
        return ServiceSettings(spool_dir=str(spool), **overrides)  # type: ignore[arg-type]

    def service(self, **overrides: object) -> Service:
        """A service over this world; its aliases are followed only when ``refresh`` is called."""
        use_cases = [self.world.use_case]
        lake = self.world.lake
        store = feature_store(lake.uri)
        return Service(self.settings(**overrides), use_cases, lake, lambda: store)

    def reset_aliases(self) -> None:
        registry = self.world.registry
        registry.set_alias(CHAMPION, self.versions[0])
        for alias in (CANARY, SHADOW):
            if registry.alias(alias) is not None:
                registry.client.delete_registered_model_alias(registry.model_name, alias)


@pytest.fixture(scope="module")
def served(
    scored_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServedWorld]:
    with build(scored_template, tmp_path_factory.mktemp("served-world")) as world:
        store = feature_store(world.lake.uri)
        start, end = materialize_window([world.days[-1]])
        views = [view.name for view in world.use_case.features.views]
        store.materialize(start_date=start, end_date=end, feature_views=views)
        more = [
            train_and_register(world.lake, world.registry, world.use_case, seed=s) for s in (1, 2)
        ]
        yield ServedWorld(world, world.root / "home", [world.champion, *more])


@pytest.fixture
def world_env(served: ServedWorld, monkeypatch: pytest.MonkeyPatch) -> Iterator[ServedWorld]:
    """The world's SCOREHOUSE_HOME and lakehouse for the test; aliases reset after it."""
    monkeypatch.setenv("SCOREHOUSE_HOME", str(served.home))
    monkeypatch.setenv("SCOREHOUSE_LAKEHOUSE_URI", served.world.lake.uri)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    served.reset_aliases()
    yield served
    served.reset_aliases()


@pytest.fixture
def running(world_env: ServedWorld) -> Iterator[tuple[Service, TestClient]]:
    """A started service over the world (champion loaded) and an HTTP client to its app."""
    service = world_env.service()
    with TestClient(create_app(service, watch=False), raise_server_exceptions=False) as client:
        service.refresh()
        yield service, client
