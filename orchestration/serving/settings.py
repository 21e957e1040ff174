"""Settings of the scoring service, shared by the command line, the supervisor and its workers.

Workers are separate processes started by the supervisor: they read the settings from the
``SCOREHOUSE_SERVE_SETTINGS`` environment variable (JSON) that ``scorehouse serve`` sets.
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

from lakehouse.config import scorehouse_home

SETTINGS_ENV = "SCOREHOUSE_SERVE_SETTINGS"
DEFAULT_PORT = 6566


@dataclass(frozen=True)
class ServiceSettings:
    """How the service listens, limits requests, follows model aliases and audits.

    Attributes:
        host, port: where to listen; loopback by default (the service has no authentication).
        workers: worker processes; each loads every model and has its own audit spool.
        max_body_bytes: larger request bodies are refused with 413.
        timeout_s: a request not answered within this is refused with 504 (its audit row says
            so); scoring is never interrupted half-way, it is checked between stages.
        poll_s: how often each worker asks MLflow where the aliases point.
        canary_share: share of entities (stable hash of the id) the ``canary`` alias serves,
            when a model has one; ``canary_shares`` overrides it per use case.
        max_batch: most entities in one scoring request.
        flush_interval_s: how often the audit spool is committed to Delta (one commit per use
            case for all workers; every row is durable in the spool before its answer).
        spool_dir: the audit spools (default ``$SCOREHOUSE_HOME/serving/spool``).
    """

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    workers: int = 1
    max_body_bytes: int = 1_048_576
    timeout_s: float = 2.0
    poll_s: float = 5.0
    canary_share: float = 0.1
    canary_shares: Mapping[str, float] = field(default_factory=dict)
    max_batch: int = 1_000
    flush_interval_s: float = 5.0
    spool_dir: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "canary_shares", MappingProxyType(dict(self.canary_shares)))
        shares = [self.canary_share, *self.canary_shares.values()]
        problems = []
        if not all(0.0 <= s <= 1.0 for s in shares):
            problems.append("canary shares must lie in [0, 1]")
        if self.workers < 1 or self.max_batch < 1:
            problems.append("workers and max_batch must be >= 1")
        if self.max_body_bytes < 1024:
            problems.append("max_body_bytes must be >= 1024")
        if min(self.timeout_s, self.poll_s, self.flush_interval_s) <= 0:
            problems.append("timeout_s, poll_s and flush_interval_s must be > 0")
        if not 0 <= self.port <= 65535:
            problems.append("port must be in 0..65535")
        if problems:
            raise ValueError("serve settings: " + "; ".join(problems))

    def share(self, use_case: str) -> float:
        """The canary share of a use case."""
        return self.canary_shares.get(use_case, self.canary_share)

    @property
    def spool_root(self) -> Path:
        return Path(self.spool_dir) if self.spool_dir else scorehouse_home() / "serving" / "spool"

    @property
    def loopback(self) -> bool:
        """True when only this machine can connect."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def to_json(self) -> str:
        data: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        data["canary_shares"] = dict(self.canary_shares)
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, raw: str) -> ServiceSettings:
        return cls(**json.loads(raw))

    @classmethod
    def from_env(cls) -> ServiceSettings:
        """The settings ``scorehouse serve`` passed to this worker (defaults when none)."""
        raw = os.environ.get(SETTINGS_ENV)
        return cls.from_json(raw) if raw else cls()
