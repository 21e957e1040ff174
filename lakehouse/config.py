"""Where Scorehouse keeps its embedded state.

``SCOREHOUSE_HOME`` (default: ``.scorehouse/`` in the checkout) holds the lakehouse folder, the
landing folder, the Dagster instance, the Feast registry and online store, and MLflow.
``SCOREHOUSE_LAKEHOUSE_URI`` points the lakehouse elsewhere: a local path or an object-store URI
(``s3://bucket/prefix``); ``SCOREHOUSE_STORAGE_OPTIONS`` (a JSON object) passes credentials and
endpoints to delta-rs and polars for such URIs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

_PACKAGE_ROOT = Path(__file__).resolve().parent.parent


def project_root() -> Path:
    """The checkout holding this package, or the working directory for a non-editable install."""
    if (_PACKAGE_ROOT / "pyproject.toml").exists():
        return _PACKAGE_ROOT
    return Path.cwd()


def scorehouse_home(*, create: bool = True) -> Path:
    """The folder for all embedded state; created on first use (unless ``create`` is False)."""
    home = Path(os.environ.get("SCOREHOUSE_HOME") or project_root() / ".scorehouse")
    if create:
        home.mkdir(parents=True, exist_ok=True)
    return home.resolve()


def lakehouse_uri() -> str:
    """Root URI of the Delta tables (``{root}/{layer}/{name}``)."""
    uri = os.environ.get("SCOREHOUSE_LAKEHOUSE_URI")
    if uri:
        return uri.rstrip("/") if is_remote(uri) else str(Path(uri).resolve())
    return str(scorehouse_home() / "lakehouse")


def landing_dir() -> Path:
    """Folder where source systems (or the simulator) drop their daily files."""
    return Path(os.environ.get("SCOREHOUSE_LANDING_DIR") or scorehouse_home() / "landing")


def storage_options() -> dict[str, str] | None:
    """Object-store options from ``SCOREHOUSE_STORAGE_OPTIONS`` (JSON), if any."""
    raw = os.environ.get("SCOREHOUSE_STORAGE_OPTIONS")
    if not raw:
        return None
    options = json.loads(raw)
    if not isinstance(options, dict):
        raise ValueError("SCOREHOUSE_STORAGE_OPTIONS must be a JSON object of strings")
    return {str(k): str(v) for k, v in options.items()}


def is_remote(uri: str) -> bool:
    """True for object-store URIs (``s3://``, ``gs://``, ``az://``, …), False for local paths."""
    return "://" in uri and not uri.startswith("file://")
