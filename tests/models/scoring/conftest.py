"""The scored tiny world of ``tests/scored_world.py``, one copy per test module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.scored_world import ScoredWorld
from tests.scored_world import scored_world as build


@pytest.fixture(scope="module")
def scored_world(
    scored_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ScoredWorld]:
    with build(scored_template, tmp_path_factory.mktemp("scoring-world")) as world:
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
