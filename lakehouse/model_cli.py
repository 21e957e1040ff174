"""``scorehouse model``: list the churn model's versions, roll the champion back.

scorehouse model list                      versions, aliases, out-of-time metrics, decisions
scorehouse model rollback VERSION [--reason TEXT]
                                           point 'champion' at VERSION (recorded as a decision)

Wired into ``lakehouse/cli.py`` with ``add_model_commands(subparsers)``. MLflow is imported only
when a model command runs, so the other commands stay fast.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import Any

import polars as pl


def add_model_commands(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``model`` (with ``list`` and ``rollback``) to an argparse sub-parsers object.

    Each leaf sets ``run`` (a function of the parsed namespace returning an exit code), the
    convention of ``lakehouse/cli.py``.
    """
    model = subparsers.add_parser("model", help="churn model versions: list, rollback")
    commands = model.add_subparsers(required=True, metavar="ACTION")
    listing = commands.add_parser("list", help="versions with aliases and key metrics")
    listing.set_defaults(run=run_list)
    rollback = commands.add_parser("rollback", help="point the champion alias at VERSION")
    rollback.add_argument("version", help="registered version number of model 'churn'")
    rollback.add_argument("--reason", default="", help="why (stored with the decision)")
    rollback.set_defaults(run=run_rollback)
    return model


def versions_frame() -> pl.DataFrame:
    """One row per registered version, newest first."""
    from models.registry import ModelRegistry

    registry = ModelRegistry()
    aliases = registry.aliases()
    rows = []
    for v in registry.versions():
        tags = v.tags
        rows.append(
            {
                "version": int(v.version),
                "aliases": ",".join(aliases.get(str(v.version), [])),
                "created": datetime.fromtimestamp(v.creation_timestamp / 1000, UTC).strftime(
                    "%Y-%m-%d %H:%M"
                ),
                "test_roc_auc": _float(tags.get("test_roc_auc")),
                "test_ece": _float(tags.get("test_ece")),
                "validation_roc_auc": _float(tags.get("validation_roc_auc")),
                "training_set_version": tags.get("training_set_version"),
                "decision": tags.get("decision", ""),
                "run_id": v.run_id,
            }
        )
    schema = {
        "version": pl.Int64,
        "aliases": pl.String,
        "created": pl.String,
        "test_roc_auc": pl.Float64,
        "test_ece": pl.Float64,
        "validation_roc_auc": pl.Float64,
        "training_set_version": pl.String,
        "decision": pl.String,
        "run_id": pl.String,
    }
    return pl.DataFrame(rows, schema=schema)


def run_list(args: argparse.Namespace) -> int:
    from models.registry import RegistryError

    try:
        frame = versions_frame()
    except RegistryError as exc:
        return _fail(exc)
    if frame.is_empty():
        print("model churn: no registered versions")
        return 0
    with pl.Config(tbl_rows=-1, tbl_cols=-1, fmt_str_lengths=40, tbl_width_chars=200):
        print(frame)
    return 0


def run_rollback(args: argparse.Namespace) -> int:
    from lakehouse.storage import Lakehouse
    from models.promotion import rollback
    from models.registry import ModelRegistry, RegistryError

    try:
        decision = rollback(ModelRegistry(), Lakehouse(), args.version, reason=args.reason)
    except RegistryError as exc:
        return _fail(exc)
    print(f"champion is now v{decision.challenger_version} ({decision.reason})")
    return 0


def _fail(exc: Exception) -> int:
    print(f"scorehouse: error: {exc}", file=sys.stderr)
    return 1


def _float(value: str | None) -> float | None:
    return float(value) if value else None
