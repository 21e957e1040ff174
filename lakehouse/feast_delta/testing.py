"""Helpers for tests and benchmarks of the Delta offline store.

Not used by the store itself: a brute-force reference point-in-time join to check results
against, and a writer for throw-away Feast repo configurations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any


def as_utc(value: datetime) -> datetime:
    """Naive datetimes are UTC; aware ones are converted to UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def reference_point_in_time_join(
    entity_rows: Sequence[Mapping[str, Any]],
    feature_rows: Sequence[Mapping[str, Any]],
    *,
    join_keys: Sequence[str],
    features: Sequence[str],
    timestamp_column: str,
    entity_timestamp_column: str = "event_timestamp",
    created_timestamp_column: str | None = None,
    ttl: timedelta | None = None,
) -> list[dict[str, Any]]:
    """Feature values per entity row, by scanning every feature row (O(n*m), for tests).

    A feature row qualifies when its keys equal the entity row's (null keys never match)
    and ``entity_ts - ttl <= ts <= entity_ts``; the qualifying row with the greatest
    ``(ts, created)`` wins, a null created timestamp ranking below any value.
    """
    result = []
    for entity in entity_rows:
        at = as_utc(entity[entity_timestamp_column])
        best: Mapping[str, Any] | None = None
        best_rank: tuple[Any, ...] = ()
        for row in feature_rows:
            if row[timestamp_column] is None or any(
                row[k] is None or row[k] != entity[k] for k in join_keys
            ):
                continue
            ts = as_utc(row[timestamp_column])
            if ts > at or (ttl and ts < at - ttl):
                continue
            created = row[created_timestamp_column] if created_timestamp_column else None
            rank = (ts, created is not None, as_utc(created) if created else None)
            if best is None or rank > best_rank:
                best, best_rank = row, rank
        result.append({f: None if best is None else best[f] for f in features})
    return result


def write_feature_store_yaml(
    repo: Path,
    *,
    project: str = "scorehouse_test",
    offline_options: Mapping[str, str] | None = None,
    extra: str = "",
) -> Path:
    """Write a ``feature_store.yaml`` using the Delta offline store and the packed SQLite
    online store, with registry and online database inside ``repo``."""
    options = "".join(f"  {k}: {v}\n" for k, v in (offline_options or {}).items())
    path = repo / "feature_store.yaml"
    path.write_text(
        f"project: {project}\n"
        "provider: local\n"
        "registry: data/registry.db\n"
        "online_store:\n"
        "  type: lakehouse.feast_online.PackedSqliteOnlineStore\n"
        "  path: data/online_rows.db\n"
        "offline_store:\n"
        "  type: lakehouse.feast_delta.DeltaOfflineStore\n"
        f"{options}"
        "entity_key_serialization_version: 3\n"
        f"{extra}"
    )
    (repo / "data").mkdir(exist_ok=True)
    return path
