"""Online lookups: a use case's feature service and its latest batch score, from Feast's online
store.

Reads go through the online store's own interface (``OnlineStore.online_read``, what Feast's
``get_online_features`` calls: ``StoreReads``), with the feature views and projections resolved
once from the registry (and again on every model poll) instead of on every call: one lookup is
one read per view. Values come back exactly as ``get_online_features`` returns them (the tests
compare the two). Each thread has its own reader, hence its own connection.

Feast's SQLite store is read by its table layout instead (``SqliteReads``, tested equal to its
``online_read``): that ``online_read`` reads every feature of the view, serializes the keys
again for every view and converts every row's timestamp on a connection opened with type
detection, which made a lookup of 100 entities cost twice the rest of their on-demand scoring.

Like ``get_online_features``, a lookup returns the latest materialized row of each view, however
old; ``features_as_of`` (the oldest of the rows used) tells how fresh the features are.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
from feast import FeatureStore, FeatureView, RepoConfig
from feast.infra.key_encoding_utils import serialize_entity_key
from feast.infra.online_stores.helpers import compute_table_id, get_online_store_from_config
from feast.infra.online_stores.online_store import OnlineStore
from feast.infra.online_stores.sqlite import SqliteOnlineStore
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import Value

from models.scoring.online import SERVED_FIELDS
from models.usecase import UseCase

PREDICTION_FIELDS = (*SERVED_FIELDS, "scored_at")
"""What a cached lookup reads of the ``<uc>_prediction`` view: the served fields and when."""


@dataclass(frozen=True)
class OnlineRow:
    """One entity's values from the online store and the event time of its oldest view row."""

    values: dict[str, Any]
    as_of: datetime


@dataclass(frozen=True)
class _Views:
    features: tuple[tuple[FeatureView, tuple[str, ...]], ...]
    prediction: FeatureView | None


Read = list[tuple[datetime | None, dict[str, Any] | None]]
"""Per entity: the event time of its view row and its feature values (``None, None``: no row)."""


def entity_keys(join_key: str, ids: Sequence[str]) -> list[EntityKey]:
    """Feast's entity keys of string ids."""
    return [EntityKey(join_keys=[join_key], entity_values=[Value(string_val=i)]) for i in ids]


class StoreReads:
    """Reads through the online store's own ``online_read`` (any Feast online store)."""

    def __init__(self, config: RepoConfig, join_key: str) -> None:
        self._config = config
        self._join_key = join_key
        self._store: OnlineStore = get_online_store_from_config(config.online_store)

    def read(
        self, views: Sequence[tuple[FeatureView, Sequence[str]]], ids: Sequence[str]
    ) -> list[Read]:
        """For each view, the named features of each id, as Python values."""
        keys = entity_keys(self._join_key, ids)
        out = []
        for view, names in views:
            read = self._store.online_read(self._config, view, keys, list(names))
            out.append(
                [
                    (stamp, None)
                    if data is None
                    else (stamp, {n: python_value(data[n]) for n in names if n in data})
                    for stamp, data in read
                ]
            )
        return out


class SqliteReads:
    """Reads of Feast's SQLite online store by its table layout: a table ``<project>_<view>``
    of rows (``entity_key`` serialized as Feast serializes it, ``feature_name``, ``value`` a
    serialized ``Value``, ``event_ts`` epoch seconds), one per feature of an entity. Reads only
    the named features, on a read-only connection of its own; timestamps are converted as
    Feast's converter does (``datetime.fromtimestamp``, then UTC)."""

    def __init__(self, config: RepoConfig, join_key: str) -> None:
        self._path = Path(SqliteOnlineStore._get_db_path(config)).resolve()
        self._project = config.project
        self._versioning = config.registry.enable_online_feature_view_versioning
        self._key_version = config.entity_key_serialization_version
        self._join_key = join_key
        self._conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            uri = f"{self._path.as_uri()}?mode=ro"
            self._conn = sqlite3.connect(uri, uri=True, check_same_thread=True)
        return self._conn

    def read(
        self, views: Sequence[tuple[FeatureView, Sequence[str]]], ids: Sequence[str]
    ) -> list[Read]:
        """For each view, the named features of each id, as Python values."""
        version = self._key_version
        keys = [
            serialize_entity_key(k, entity_key_serialization_version=version)
            for k in entity_keys(self._join_key, ids)
        ]
        return [self._read_view(view, names, keys) for view, names in views]

    def _read_view(self, view: FeatureView, names: Sequence[str], keys: list[bytes]) -> Read:
        table = compute_table_id(self._project, view, self._versioning).replace('"', '""')
        query = (
            f'SELECT entity_key, feature_name, value, event_ts FROM "{table}" '
            f"WHERE entity_key IN ({','.join('?' * len(keys))}) "
            f"AND feature_name IN ({','.join('?' * len(names))})"
        )
        found: dict[bytes, tuple[int, dict[str, Any]]] = {}
        parse = Value.FromString
        for entity, feature, blob, stamp in self._connection().execute(query, [*keys, *names]):
            row = found.get(entity)
            if row is None:
                row = found[entity] = (stamp, {})
            elif stamp > row[0]:  # one timestamp per view row; keep the latest should they differ
                row = found[entity] = (stamp, row[1])
            row[1][feature] = python_value(parse(blob))
        out: Read = []
        for entity in keys:
            row = found.get(entity)
            if row is None:
                out.append((None, None))
            else:
                out.append((datetime.fromtimestamp(int(row[0])).replace(tzinfo=UTC), row[1]))
        return out


class OnlineLookup:
    """Feature rows and batch scores of one use case's entities, by entity id."""

    def __init__(self, store: FeatureStore, use_case: UseCase) -> None:
        self._config = store.config
        self._join_key = use_case.entity.join_key
        self._booleans = frozenset(
            name for name, dtype in use_case.encoding.features.items() if dtype == pl.Boolean
        )
        self._service = use_case.features.service
        self._prediction = f"{use_case.name}_prediction"
        self._local = threading.local()
        self._views = self._resolve(store)

    def refresh(self, store: FeatureStore) -> None:
        """Resolve the views again (after a ``feast apply``); swapped as one reference."""
        store.refresh_registry()
        self._views = self._resolve(store)

    def _resolve(self, store: FeatureStore) -> _Views:
        service = store.get_feature_service(self._service)
        views = []
        for projection in service.feature_view_projections:
            view = store.get_feature_view(projection.name)
            views.append((view, tuple(f.name for f in projection.features)))
        try:
            prediction: FeatureView | None = store.get_feature_view(self._prediction)
        except Exception:  # a use case never scored in batch has no prediction view yet
            prediction = None
        return _Views(tuple(views), prediction)

    @property
    def _reads(self) -> StoreReads | SqliteReads:
        reads = getattr(self._local, "reads", None)
        if reads is None:
            kind = SqliteReads if self._config.online_store.type == "sqlite" else StoreReads
            reads = self._local.reads = kind(self._config, self._join_key)
        return reads

    def features(self, ids: Sequence[str]) -> list[OnlineRow | None]:
        """The service's features of each id (None: the id is in no view), one read per view.

        A feature the online store has no value for (an entity missing from one view) is None,
        as in ``get_online_features``.
        """
        views = self._views.features
        rows: list[dict[str, Any]] = [{} for _ in ids]
        found = [False] * len(ids)
        oldest: list[datetime | None] = [None] * len(ids)
        for (_, names), read in zip(views, self._reads.read(views, ids), strict=True):
            for i, (stamp, data) in enumerate(read):
                target = rows[i]
                if data is None:
                    target.update(dict.fromkeys(names))
                    continue
                found[i] = True
                if stamp is not None and (oldest[i] is None or stamp < oldest[i]):  # type: ignore[operator]
                    oldest[i] = stamp
                for name in names:
                    target[name] = data.get(name)
        for row in rows:
            for name in self._booleans:
                if row.get(name) is not None:
                    row[name] = bool(row[name])
        return [
            OnlineRow(row, oldest[i] or datetime.fromtimestamp(0, UTC)) if found[i] else None
            for i, row in enumerate(rows)
        ]

    def prediction(self, entity_id: str) -> OnlineRow | None:
        """The entity's latest batch score and reasons (the ``<use case>_prediction`` view)."""
        view = self._views.prediction
        if view is None:
            return None
        [[(stamp, values)]] = self._reads.read([(view, PREDICTION_FIELDS)], [entity_id])
        if values is None or stamp is None:
            return None
        return OnlineRow(values, stamp)

    def ping(self) -> None:
        """Raise unless the online store answers a read (of an id no entity has)."""
        views = self._views.features
        if views:
            view, names = views[0]
            self._reads.read([(view, names[:1])], [""])


def python_value(proto: Value) -> Any:
    """A Feast ``Value`` as the Python value ``get_online_features().to_dict()`` gives."""
    kind = proto.WhichOneof("val")
    if kind is None or kind == "null_val":
        return None
    value = getattr(proto, kind)
    if kind == "unix_timestamp_val":
        return datetime.fromtimestamp(value, UTC)
    if kind.endswith("_list_val"):
        if kind == "unix_timestamp_list_val":
            return [datetime.fromtimestamp(v, UTC) for v in value.val]
        return list(value.val)
    return value
