"""Commit metadata, the retry policy for commits that lose a race, and reading the Delta log.

Every commit carries metadata (operation, rows, code version, Dagster run, asset, partition,
a unique ``scorehouse.commit_id`` and the ``scorehouse.attempts`` it took), readable in the table
history. The version a write reports is the version whose commit holds its commit id, read
back from the log: never the table's latest version after the fact, which a concurrent writer
may already have moved on.
"""

from __future__ import annotations

import functools
import json
import random
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from lakehouse.config import project_root

COMMIT_ID = "scorehouse.commit_id"
ATTEMPTS = "scorehouse.attempts"


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


@dataclass(frozen=True)
class RetryPolicy:
    """How a write retries a commit that lost a race to another writer.

    Exponential back-off with jitter: after failed attempt ``n`` the writer waits between half
    and all of ``min(max_delay_s, base_delay_s * 2**(n-1))``, so racing writers spread out
    instead of colliding again. It stops after ``max_attempts`` attempts, or before a wait that
    would take the write past ``max_seconds`` in all.
    """

    max_attempts: int = 16
    max_seconds: float = 120.0
    base_delay_s: float = 0.05
    max_delay_s: float = 2.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.max_seconds <= 0 or self.base_delay_s < 0:
            raise ValueError(f"retry policy needs attempts >= 1 and positive bounds: {self}")

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based)."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
        return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)


@dataclass(frozen=True)
class LogEntry:
    """What one commit of the Delta log did, as far as a concurrent writer needs to know."""

    version: int
    commit: Mapping[str, Any]
    changed_partitions: tuple[Mapping[str, str | None], ...]
    """``partitionValues`` of every file the commit added or removed with ``dataChange``."""
    schema: str | None
    """The ``schemaString`` of a ``metaData`` action, if the commit changed the metadata."""
    protocol_changed: bool

    @classmethod
    def parse(cls, version: int, raw: bytes) -> LogEntry:
        commit: Mapping[str, Any] = {}
        changed: list[Mapping[str, str | None]] = []
        schema, protocol = None, False
        for line in raw.decode().splitlines():
            if not line.strip():
                continue
            action = json.loads(line)
            if "commitInfo" in action:
                commit = action["commitInfo"]
            for kind in ("add", "remove"):
                if kind in action and action[kind].get("dataChange", True):
                    changed.append(action[kind].get("partitionValues") or {})
            if "metaData" in action:
                schema = action["metaData"].get("schemaString")
            protocol = protocol or "protocol" in action
        return cls(version, commit, tuple(changed), schema, protocol)

    @property
    def commit_id(self) -> str | None:
        value = self.commit.get(COMMIT_ID)
        return str(value) if value is not None else None

    @property
    def changes_data(self) -> bool:
        return bool(self.changed_partitions)

    def describe(self) -> str:
        """``version 7 (replace, run 1f3e…, partition 2025-01-01)``: who wrote this commit."""
        operation = self.commit.get("scorehouse.operation") or self.commit.get(
            "operation", "unknown operation"
        )
        details = [str(operation)]
        if self.commit.get("dagster.run_id"):
            details.append(f"run {self.commit['dagster.run_id']}")
        if self.commit.get("dagster.partition"):
            details.append(f"partition {self.commit['dagster.partition']}")
        return f"version {self.version} ({', '.join(details)})"

    def touches(self, partitions: Mapping[str, list[str | None]]) -> bool:
        """True if a data change of this commit lies in ``partitions`` (``{}``: anywhere)."""
        return any(
            all(values.get(column) in wanted for column, wanted in partitions.items())
            for values in self.changed_partitions
        )
