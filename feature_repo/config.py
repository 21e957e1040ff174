"""The feature store for the current ``SCOREHOUSE_HOME`` (any home, not only the default).

``feature_store.yaml`` holds the embedded defaults for the plain ``feast`` CLI run in this
folder. Python code calls ``feature_store()``, which uses the same settings with the registry,
the SQLite online store and the lakehouse root placed under the current home.
"""

import logging
import sys
from pathlib import Path

import yaml
from feast import FeatureStore, RepoConfig

from lakehouse import config

REPO_PATH = Path(__file__).resolve().parent


class _QuietServeWhileMaterializing(logging.Filter):
    """Drops Feast's advice that ``serve_features_while_materializing`` targets SQL registries:
    the file registry honours it too (what the setting is for: see ``feature_store.yaml``), and
    the advice would be logged for every store built."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`serve_features_while_materializing` is enabled but" not in record.getMessage()


logging.getLogger("feast.repo_config").addFilter(_QuietServeWhileMaterializing())


def repo_config(lakehouse_uri: str | None = None, pins: dict[str, int] | None = None) -> RepoConfig:
    """``feature_store.yaml`` with state under ``SCOREHOUSE_HOME``; sources under the lakehouse."""
    raw = yaml.safe_load((REPO_PATH / "feature_store.yaml").read_text())
    feast_dir = config.scorehouse_home() / "feast"
    feast_dir.mkdir(parents=True, exist_ok=True)
    raw["registry"]["path"] = str(feast_dir / "registry.db")
    raw["online_store"]["path"] = str(feast_dir / "online_store.db")
    raw["offline_store"]["lakehouse_uri"] = lakehouse_uri or config.lakehouse_uri()
    if pins:
        # Sources are addressed by their path under the lakehouse: "features/customer_activity".
        raw["offline_store"]["version_pins"] = {
            name.replace(".", "/", 1): version for name, version in pins.items()
        }
    repo = RepoConfig(**raw)
    repo.repo_path = REPO_PATH
    return repo


def feature_store(
    lakehouse_uri: str | None = None, pins: dict[str, int] | None = None
) -> FeatureStore:
    """A ``FeatureStore`` over this repo for the current ``SCOREHOUSE_HOME``.

    ``pins`` (``layer.name`` → Delta version) makes offline retrieval read those tables at
    those versions: scoring pins them at run start, replay pins the recorded ones.
    """
    return FeatureStore(repo_path=str(REPO_PATH), config=repo_config(lakehouse_uri, pins))


def apply(lakehouse_uri: str | None = None) -> None:
    """``feast apply`` of this repo's definitions (what the CLI does, for any home)."""
    from feast.repo_operations import apply_total

    # Feast imports the repo's files as top-level modules, as its CLI does from this folder.
    if str(REPO_PATH) not in sys.path:
        sys.path.insert(0, str(REPO_PATH))
    # The definitions are generated from the use cases in effect: import them afresh, or a
    # use case added since the last apply in this process would be missing.
    for path in REPO_PATH.glob("*.py"):
        sys.modules.pop(path.stem, None)
    apply_total(repo_config(lakehouse_uri), REPO_PATH, skip_source_validation=False)
