"""Shared fixtures: every test gets its own SCOREHOUSE_HOME so nothing touches the checkout's."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def scorehouse_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "scorehouse-home"
    monkeypatch.setenv("SCOREHOUSE_HOME", str(home))
    monkeypatch.delenv("SCOREHOUSE_LAKEHOUSE_URI", raising=False)
    monkeypatch.delenv("SCOREHOUSE_LANDING_DIR", raising=False)
    monkeypatch.delenv("SCOREHOUSE_STORAGE_OPTIONS", raising=False)
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster"))
    (home / "dagster").mkdir(parents=True)
    return home
