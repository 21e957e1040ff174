"""``PackedSqliteOnlineStore``: Feast's SQLite online store with one row per entity and view.

Enable it in ``feature_store.yaml``::

    online_store:
      type: lakehouse.feast_online.PackedSqliteOnlineStore
      path: data/online_rows.db

Feast's own SQLite store keeps one row per *feature* of an entity (37 rows for a churn
customer's four views): reading 100 customers fetched 3,700 rows, and building their Python
objects cost more than the rest of scoring them. Here an entity's row of a view is one SQLite
row — its key, event and creation times, the feature names and their values — so the same read
fetches 400 rows, and a row is replaced whole in one statement (a reader never sees half of a
materialized row).

Layout of the table ``<project>_<view>`` (Feast's table id), ``WITHOUT ROWID``:

- ``entity_key`` BLOB primary key: the entity key serialized as Feast serializes it;
- ``event_ts``, ``created_ts`` INTEGER: microseconds since the epoch (UTC; Feast's store keeps
  whole seconds);
- ``names`` TEXT: the feature names, a JSON array;
- ``features`` BLOB: their values in that order, a serialized Feast ``RepeatedValue``.

A write that names only some of a view's features keeps the row's other values (as Feast's
store does, feature by feature). Feast's readers (``get_online_features``, its feature server)
go through ``online_read``; ``read_rows`` gives the raw rows to a reader that decodes them
itself (the scoring service).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

import orjson
from feast import Entity, FeatureView
from feast.infra.key_encoding_utils import serialize_entity_key
from feast.infra.online_stores.helpers import compute_table_id
from feast.infra.online_stores.online_store import OnlineStore
from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
from feast.protos.feast.types.Value_pb2 import RepeatedValue
from feast.protos.feast.types.Value_pb2 import Value as ValueProto
from feast.repo_config import FeastConfigBaseModel, RepoConfig
from pydantic import StrictStr

TYPE: Final = "lakehouse.feast_online.PackedSqliteOnlineStore"
KEYS_PER_QUERY = 5_000
"""Entity keys bound in one ``IN (...)`` (SQLite allows 32,766 variables)."""

Row = tuple[bytes, int, str, bytes]
"""``entity_key``, ``event_ts`` (µs), ``names`` (JSON), ``features`` (``RepeatedValue``)."""


class PackedSqliteOnlineStoreConfig(FeastConfigBaseModel):
    """Where the SQLite file lives (relative paths: to the feature repo)."""

    type: Literal["lakehouse.feast_online.PackedSqliteOnlineStore"] = TYPE
    path: StrictStr = "data/online_rows.db"


def db_path(config: RepoConfig) -> Path:
    """The SQLite file of ``config``'s online store."""
    path = Path(config.online_store.path)
    if config.repo_path and not path.is_absolute():
        path = Path(config.repo_path) / path
    return path


def table_name(config: RepoConfig, view: FeatureView) -> str:
    """The table of ``view`` (Feast's table id), quoted for SQL."""
    versioning = config.registry.enable_online_feature_view_versioning
    name = compute_table_id(config.project, view, versioning)
    return '"' + name.replace('"', '""') + '"'


def micros(moment: datetime | None) -> int | None:
    """``moment`` as microseconds since the epoch; a naive datetime is taken as UTC (Feast's
    materialization hands over naive UTC times)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(value: int) -> datetime:
    return datetime.fromtimestamp(value // 1_000_000, UTC).replace(microsecond=value % 1_000_000)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def read_rows(connection: sqlite3.Connection, table: str, keys: Sequence[bytes]) -> list[Row]:
    """The stored rows of ``keys`` in ``table`` (any order; keys without a row are absent)."""
    rows: list[Row] = []
    for start in range(0, len(keys), KEYS_PER_QUERY):
        chunk = keys[start : start + KEYS_PER_QUERY]
        query = (
            f"SELECT entity_key, event_ts, names, features FROM {table} "
            f"WHERE entity_key IN ({','.join('?' * len(chunk))})"
        )
        rows += connection.execute(query, chunk).fetchall()
    return rows


class PackedSqliteOnlineStore(OnlineStore):
    """Feast online store over one SQLite file, one row per entity and view (module docstring).

    Each thread has its own connection: Feast's feature server reads from a thread pool.
    """

    def __init__(self) -> None:
        super().__init__()
        self._local = threading.local()

    def _connection(self, config: RepoConfig) -> sqlite3.Connection:
        path = db_path(config)
        held: tuple[Path, sqlite3.Connection] | None = getattr(self._local, "held", None)
        if held is not None and held[0] == path:
            return held[1]
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(path, timeout=30.0)
        self._local.held = (path, connection)
        return connection

    def online_write_batch(
        self,
        config: RepoConfig,
        table: FeatureView,
        data: list[tuple[EntityKeyProto, dict[str, ValueProto], datetime, datetime | None]],
        progress: Callable[[int], Any] | None,
    ) -> None:
        """Upsert each entity's row, all of ``data`` in one transaction."""
        version = config.entity_key_serialization_version
        name = table_name(config, table)
        full = {f.name for f in table.features}
        rows: dict[bytes, tuple[int | None, int | None, dict[str, ValueProto]]] = {}
        for entity_key, values, event_ts, created_ts in data:
            key = serialize_entity_key(entity_key, entity_key_serialization_version=version)
            earlier = rows.get(key)
            merged = {**earlier[2], **values} if earlier is not None else dict(values)
            rows[key] = (micros(event_ts), micros(created_ts), merged)
        connection = self._connection(config)
        with connection:
            partial = [key for key, (_, _, values) in rows.items() if not full <= values.keys()]
            if partial:
                kept = {
                    key: _values(names, blob)
                    for key, _, names, blob in read_rows(connection, name, partial)
                }
                for key in partial:
                    event, created, values = rows[key]
                    rows[key] = (event, created, {**kept.get(key, {}), **values})
            connection.executemany(
                f"INSERT INTO {name} (entity_key, event_ts, created_ts, names, features) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT(entity_key) DO UPDATE SET "
                "event_ts = excluded.event_ts, created_ts = excluded.created_ts, "
                "names = excluded.names, features = excluded.features",
                [
                    (
                        key,
                        event,
                        created,
                        orjson.dumps(list(values)).decode(),
                        RepeatedValue(val=list(values.values())).SerializeToString(),
                    )
                    for key, (event, created, values) in rows.items()
                ],
            )
        if progress:
            progress(len(data))

    def online_read(
        self,
        config: RepoConfig,
        table: FeatureView,
        entity_keys: list[EntityKeyProto],
        requested_features: list[str] | None = None,
    ) -> list[tuple[datetime | None, dict[str, ValueProto] | None]]:
        """Each key's event time and values (of ``requested_features``, or all), or
        ``(None, None)`` for a key without a row."""
        version = config.entity_key_serialization_version
        keys = [
            serialize_entity_key(k, entity_key_serialization_version=version) for k in entity_keys
        ]
        found = {
            key: (event, names, blob)
            for key, event, names, blob in read_rows(
                self._connection(config), table_name(config, table), keys
            )
        }
        wanted = None if requested_features is None else set(requested_features)
        out: list[tuple[datetime | None, dict[str, ValueProto] | None]] = []
        for key in keys:
            row = found.get(key)
            if row is None:
                out.append((None, None))
                continue
            values = _values(row[1], row[2])
            if wanted is not None:
                values = {n: v for n, v in values.items() if n in wanted}
            out.append((from_micros(row[0]), values))
        return out

    def update(
        self,
        config: RepoConfig,
        tables_to_delete: Sequence[FeatureView],
        tables_to_keep: Sequence[FeatureView],
        entities_to_delete: Sequence[Entity],
        entities_to_keep: Sequence[Entity],
        partial: bool,
    ) -> None:
        """Create the kept views' tables, drop the deleted ones'."""
        connection = self._connection(config)
        with connection:
            for view in tables_to_keep:
                connection.execute(
                    f"CREATE TABLE IF NOT EXISTS {table_name(config, view)} ("
                    "entity_key BLOB PRIMARY KEY, event_ts INTEGER NOT NULL, "
                    "created_ts INTEGER, names TEXT NOT NULL, features BLOB NOT NULL"
                    ") WITHOUT ROWID"
                )
            for view in tables_to_delete:
                connection.execute(f"DROP TABLE IF EXISTS {table_name(config, view)}")

    def teardown(
        self, config: RepoConfig, tables: Sequence[FeatureView], entities: Sequence[Entity]
    ) -> None:
        """Drop the views' tables (the file stays: other projects may share it)."""
        self.update(config, tables, [], entities, [], partial=False)


def _values(names: str, blob: bytes) -> dict[str, ValueProto]:
    return dict(zip(orjson.loads(names), RepeatedValue.FromString(blob).val, strict=True))
