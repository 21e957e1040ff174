"""The lifecycle of a model version, as data: states, the moves between them, the aliases.

::

    candidate ──► shadow ──► champion ──► retired
        │            │
        └─► rejected ◄┘          (candidate ──► champion only for a use case's first model,
                                  or when the promotion policy judges on out-of-time rows)

* ``candidate``: registered by a training run (alias ``candidate``); nothing serves or scores it.
* ``shadow``: scored by every daily scoring run beside the champion, from the same feature rows,
  into the shadow tables (alias ``shadow``; never served, ``models.lifecycle.shadow``).
* ``champion``: served (alias ``champion``). The previous champion becomes ``retired``.
* ``rejected`` / ``retired``: final; the version stays registered for audit and rollback.

A version's current state is its ``lifecycle_state`` tag; every move is a row of the use case's
append-only model-decisions table with its evidence (``models.lifecycle.tables``), so the
history of every version can be read back (``timeline``).
"""

from __future__ import annotations

import json
from typing import Any

import polars as pl

from lakehouse.storage import Lakehouse
from models.lifecycle.registry import CANDIDATE, CHAMPION, SHADOW
from models.usecase.spec import UseCase

REJECTED, RETIRED = "rejected", "retired"
STATES = (CANDIDATE, SHADOW, CHAMPION, REJECTED, RETIRED)
ALIAS_OF = {CANDIDATE: CANDIDATE, SHADOW: SHADOW, CHAMPION: CHAMPION}
"""The MLflow alias a version in each live state carries (final states carry none)."""
MOVES: dict[str, tuple[str, ...]] = {
    CANDIDATE: (SHADOW, CHAMPION, REJECTED, RETIRED),
    SHADOW: (CHAMPION, REJECTED, RETIRED),
    CHAMPION: (RETIRED,),
    REJECTED: (CHAMPION,),  # rollback only
    RETIRED: (CHAMPION,),  # rollback only
}


class LifecycleError(ValueError):
    """A move the lifecycle does not allow; the message names the version and both states."""


def check_move(version: str, current: str, target: str) -> None:
    """Raise ``LifecycleError`` unless ``current → target`` is a move of ``MOVES``."""
    if target not in MOVES.get(current, ()):
        allowed = ", ".join(MOVES.get(current, ())) or "none"
        raise LifecycleError(
            f"v{version}: {current} → {target} is not a lifecycle move (from {current}: {allowed})"
        )


def state_of(tags: dict[str, str] | None, aliases: list[str] | None = None) -> str:
    """A version's state from its tags (versions registered before states existed: from their
    aliases, else ``retired``)."""
    tags = tags or {}
    if tags.get("lifecycle_state") in STATES:
        return tags["lifecycle_state"]
    for alias in aliases or []:
        if alias in ALIAS_OF:
            return alias
    return RETIRED


def evidence_json(evidence: dict[str, Any]) -> str:
    """Evidence as stable JSON (NaN as null: the table holds strict JSON)."""
    return json.dumps(_finite(evidence), sort_keys=True, default=str)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def timeline(lake: Lakehouse, use_case: UseCase) -> pl.DataFrame:
    """Every recorded lifecycle move of the use case's versions, oldest first."""
    table = use_case.tables.decisions
    if not lake.exists(table):
        return lake_empty(lake, table)
    return lake.read(table).sort("decided_at")


def lake_empty(lake: Lakehouse, table: str) -> pl.DataFrame:
    return pl.DataFrame(schema=lake.catalog[table].polars_schema)
