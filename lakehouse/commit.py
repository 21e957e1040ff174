"""Commit metadata: who and what wrote each Delta version, readable in the table history."""

from __future__ import annotations

import functools
import subprocess
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from lakehouse.config import project_root


@functools.cache
def code_version() -> str:
    """``scorehouse`` package version plus the git commit of the checkout, when there is one."""
    try:
        version = metadata.version("scorehouse")
    except metadata.PackageNotFoundError:
        version = "0+unknown"
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=project_root(),
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return version
    return f"{version}+g{sha}" if sha else version


@dataclass(frozen=True)
class CommitInfo:
    """Context of a write, stored as custom metadata on the Delta commit.

    ``operation`` is filled in by the writer (append, replace, merge, …); the rest comes from
    the caller, typically a Dagster asset (run id, asset key, partition).
    """

    run_id: str | None = None
    asset_key: str | None = None
    partition: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_metadata(self, operation: str, rows: int) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "scorehouse.operation": operation,
            "scorehouse.rows": rows,
            "scorehouse.code_version": code_version(),
        }
        if self.run_id:
            meta["dagster.run_id"] = self.run_id
        if self.asset_key:
            meta["dagster.asset_key"] = self.asset_key
        if self.partition:
            meta["dagster.partition"] = self.partition
        for key, value in self.extra.items():
            meta[f"scorehouse.{key}"] = value
        return meta
