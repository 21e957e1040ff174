"""Shared fixtures: every test gets its own SCOREHOUSE_HOME so nothing touches the checkout's;
the expensive scored world is built once per session (``scored_template``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.s3 import s3_emulator  # noqa: F401  (a session fixture: the local S3 emulator)
from tests.scored_world import build_template


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The files that hold an end-to-end test (marked ``slow``) first, in collection order, then
    the others: ``make test``'s workers take a file at a time, and a long file taken last would
    finish alone while the other worker idles. Within a file the order is kept."""
    long_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in long_files)  # stable


@pytest.fixture(autouse=True)
def scorehouse_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "scorehouse-home"
    monkeypatch.setenv("SCOREHOUSE_HOME", str(home))
    monkeypatch.delenv("SCOREHOUSE_LAKEHOUSE_URI", raising=False)
    monkeypatch.delenv("SCOREHOUSE_LANDING_DIR", raising=False)
    monkeypatch.delenv("SCOREHOUSE_STORAGE_OPTIONS", raising=False)
    monkeypatch.delenv("SCOREHOUSE_USE_CASES", raising=False)
    # The embedded profile, whatever the shell says (the scale tests set their own).
    for name in (
        "SCOREHOUSE_PROFILE",
        "SCOREHOUSE_PROFILE_FILE",
        "SCOREHOUSE_EXECUTOR",
        "SCOREHOUSE_SCORING_BUCKETS",
        "SCOREHOUSE_FEAST_REGISTRY",
        "SCOREHOUSE_FEAST_ONLINE_STORE",
        "SCOREHOUSE_MLFLOW_ARTIFACTS",
        "SCOREHOUSE_STEP_STORAGE",
        "MLFLOW_TRACKING_URI",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster"))
    (home / "dagster").mkdir(parents=True)
    return home


@pytest.fixture(scope="session")
def scored_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A churn world with features, labels, a training set and a champion (read-only: copy it)."""
    root = tmp_path_factory.mktemp("scored-template")
    build_template(root)
    return root
