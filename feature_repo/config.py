"""The feature store for the current ``SCOREHOUSE_HOME`` (any home, not only the default).

``feature_store.yaml`` holds the embedded defaults for the plain ``feast`` CLI run in this
folder. Python code calls ``feature_store()``, which uses the same settings with the registry,
the SQLite online store and the lakehouse root placed under the current home.

Two settings move the state to services (the ``scale`` profile sets both):

* ``SCOREHOUSE_FEAST_REGISTRY``: a SQLAlchemy URL (``postgresql+psycopg2://…/feast``), Feast's
  SQL registry instead of the registry file;
* ``SCOREHOUSE_FEAST_ONLINE_STORE``: a Redis URL (``redis://host:port/db``, ``rediss://`` for
  TLS, a password in the URL), Feast's Redis online store instead of SQLite.
"""

import logging
import os
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

import yaml
from feast import FeatureStore, RepoConfig

from lakehouse import config
from lakehouse.feast_online import TYPE as PACKED_SQLITE

REPO_PATH = Path(__file__).resolve().parent


class _QuietServeWhileMaterializing(logging.Filter):
    """Drops Feast's advice that ``serve_features_while_materializing`` targets SQL registries:
    the file registry honours it too (what the setting is for: see ``feature_store.yaml``), and
    the advice would be logged for every store built."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`serve_features_while_materializing` is enabled but" not in record.getMessage()


logging.getLogger("feast.repo_config").addFilter(_QuietServeWhileMaterializing())

SERVE_WHILE_MATERIALIZING = {"serve_features_while_materializing": True}


def repo_config(lakehouse_uri: str | None = None, pins: dict[str, int] | None = None) -> RepoConfig:
    """``feature_store.yaml`` with state under ``SCOREHOUSE_HOME``; sources under the lakehouse."""
    raw = yaml.safe_load((REPO_PATH / "feature_store.yaml").read_text())
    feast_dir = config.scorehouse_home() / "feast"
    feast_dir.mkdir(parents=True, exist_ok=True)
    raw["registry"] = registry_config(feast_dir)
    raw["online_store"] = online_store_config(feast_dir)
    raw["offline_store"]["lakehouse_uri"] = lakehouse_uri or config.lakehouse_uri()
    if pins:
        # Sources are addressed by their path under the lakehouse: "features/customer_activity".
        raw["offline_store"]["version_pins"] = {
            name.replace(".", "/", 1): version for name, version in pins.items()
        }
    repo = RepoConfig(**raw)
    repo.repo_path = REPO_PATH
    return repo


def registry_config(feast_dir: Path) -> dict:
    """The registry file under the home, or the SQL registry of ``SCOREHOUSE_FEAST_REGISTRY``;
    either serves a view while it is materializing (see ``feature_store.yaml``)."""
    url = os.environ.get("SCOREHOUSE_FEAST_REGISTRY")
    if not url:
        return {"path": str(feast_dir / "registry.db"), **SERVE_WHILE_MATERIALIZING}
    return {
        **SERVE_WHILE_MATERIALIZING,
        "registry_type": "sql",
        "path": url,
        # Each store object caches the registry this long; apply refreshes its own at once.
        "cache_ttl_seconds": 60,
        "sqlalchemy_config_kwargs": {"pool_pre_ping": True},
    }


def online_store_config(feast_dir: Path) -> dict:
    """SQLite under the home (our packed store, ``lakehouse.feast_online``), or Redis at
    ``SCOREHOUSE_FEAST_ONLINE_STORE``."""
    url = os.environ.get("SCOREHOUSE_FEAST_ONLINE_STORE")
    if not url:
        return {"type": PACKED_SQLITE, "path": str(feast_dir / "online_rows.db")}
    return {"type": "redis", "connection_string": redis_connection_string(url)}


def redis_connection_string(url: str) -> str:
    """``redis://[:password@]host:port/db`` as Feast's ``host:port,db=N,password=…,ssl=true``."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise ValueError(
            f"SCOREHOUSE_FEAST_ONLINE_STORE={url!r}: expected redis://host:port/db or rediss://…"
        )
    fields = [f"{parts.hostname}:{parts.port or 6379}"]
    database = parts.path.strip("/") or "0"
    if not database.isdigit():
        raise ValueError(f"SCOREHOUSE_FEAST_ONLINE_STORE={url!r}: database must be a number")
    fields.append(f"db={database}")
    if parts.username and parts.username != "default":
        fields.append(f"username={unquote(parts.username)}")
    if parts.password:
        fields.append(f"password={unquote(parts.password)}")
    if parts.scheme == "rediss":
        fields.append("ssl=true")
    return ",".join(fields)


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
