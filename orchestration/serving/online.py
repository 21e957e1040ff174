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

A lookup asked not to wait (``wait=False``, how the event loop reads a cached score without
handing it to a thread) reads SQLite on a connection that never waits for a lock, and raises
``WouldBlock`` instead of waiting (a materialization committing) or for a store whose reads go
over the network; the caller then reads on a thread.

Like ``get_online_features``, a lookup returns the latest materialized row of each view, however
old; ``features_as_of`` (the oldest of the rows used) tells how fresh the features are.
"""

from __future__ import annotations

import copy
import sqlite3
import struct
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


class WouldBlock(Exception):
    """A lookup asked not to wait could not be answered without waiting."""


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
    serialized ``Value``, ``event_ts`` epoch seconds), one per feature of an entity. Reads the
    named features, on a read-only connection of its own; values are decoded by ``value_of``,
    timestamps converted as Feast's converter does (``datetime.fromtimestamp``, then UTC).

    ``wait=False``: the connection never waits for a lock (a writer committing) and a read that
    would raises ``WouldBlock``.
    """

    def __init__(self, config: RepoConfig, join_key: str, *, wait: bool = True) -> None:
        self._path = Path(SqliteOnlineStore._get_db_path(config)).resolve()
        self._project = config.project
        self._versioning = config.registry.enable_online_feature_view_versioning
        self._key_version = config.entity_key_serialization_version
        self._join_key = join_key
        self._wait = wait
        self._conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            uri = f"{self._path.as_uri()}?mode=ro"
            timeout = 5.0 if self._wait else 0.0  # sqlite3's default wait for a lock, or none
            self._conn = sqlite3.connect(uri, uri=True, timeout=timeout, check_same_thread=True)
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
            f"WHERE entity_key IN ({','.join('?' * len(keys))})"
        )
        wanted = frozenset(names)
        arguments: list[bytes | str] = [*keys]
        if wanted != {f.name for f in view.features}:
            # A subset: filter in SQLite. For every feature of the view, scanning each entity's
            # rows by the key's index is a quarter faster than one seek per (key, feature).
            query += f" AND feature_name IN ({','.join('?' * len(wanted))})"
            arguments += sorted(wanted)
        found: dict[bytes, tuple[int, dict[str, Any]]] = {}
        try:
            fetched = self._connection().execute(query, arguments).fetchall()
        except sqlite3.OperationalError as exc:
            if not self._wait and "locked" in str(exc):
                raise WouldBlock(f"{table}: {exc}") from exc
            raise
        for entity, feature, blob, stamp in fetched:
            if feature not in wanted:  # rows of a feature the view no longer has
                continue
            row = found.get(entity)
            if row is None:
                row = found[entity] = (stamp, {})
            elif stamp > row[0]:  # one timestamp per view row; keep the latest should they differ
                row = found[entity] = (stamp, row[1])
            row[1][feature] = value_of(blob)
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
        self._registry: object | None = _registry_state(store)
        self._views = self._resolve(store)

    def refresh(self, store: FeatureStore) -> None:
        """Resolve the views again when the registry changed (a ``feast apply``); swapped as one
        reference. Resolving builds every feature view from its proto (about 17 ms of Python
        for the two use cases, holding the interpreter lock that requests need), so it is done
        only when the registry's content differs from the one last resolved."""
        store.refresh_registry()
        state = _registry_state(store)
        if state is not None and state == self._registry:
            return
        self._views = self._resolve(store)
        self._registry = state

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
            kind = SqliteReads if self._sqlite else StoreReads
            reads = self._local.reads = kind(self._config, self._join_key)
        return reads

    @property
    def _sqlite(self) -> bool:
        return self._config.online_store.type == "sqlite"

    def _reads_now(self) -> SqliteReads:
        """This thread's reader that never waits (see the module docstring)."""
        if not self._sqlite:
            raise WouldBlock(f"{self._config.online_store.type} reads go over the network")
        reads = getattr(self._local, "now", None)
        if reads is None:
            reads = self._local.now = SqliteReads(self._config, self._join_key, wait=False)
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

    def prediction(self, entity_id: str, *, wait: bool = True) -> OnlineRow | None:
        """The entity's latest batch score and reasons (the ``<use case>_prediction`` view);
        ``wait=False``: ``WouldBlock`` rather than wait (see the module docstring)."""
        view = self._views.prediction
        if view is None:
            return None
        reads = self._reads if wait else self._reads_now()
        [[(stamp, values)]] = reads.read([(view, PREDICTION_FIELDS)], [entity_id])
        if values is None or stamp is None:
            return None
        return OnlineRow(values, stamp)

    def ping(self) -> None:
        """Raise unless the online store answers a read (of an id no entity has)."""
        views = self._views.features
        if views:
            view, names = views[0]
            self._reads.read([(view, names[:1])], [""])


def _registry_state(store: FeatureStore) -> object | None:
    """The registry content a store has cached (a ``RegistryProto``), or None when its registry
    keeps no such copy (then every refresh resolves the views)."""
    proto = getattr(store.registry, "cached_registry_proto", None)
    return None if proto is None else copy.copy(proto)


def _tag(field: str, wire_type: int) -> int:
    return (Value.DESCRIPTOR.fields_by_name[field].number << 3) | wire_type


_DOUBLE, _INT64, _STRING = _tag("double_val", 1), _tag("int64_val", 0), _tag("string_val", 2)
_unpack_double = struct.Struct("<d").unpack_from


def value_of(blob: bytes) -> Any:
    """A serialized Feast ``Value`` as ``python_value(Value.FromString(blob))`` gives it.

    Feast's SQLite store keeps one serialized ``Value`` per feature. The kinds most features
    have (a double, an int64, a short string) are one protobuf field whose wire format is read
    here directly, in half the time of parsing a message and asking it which field is set; any
    other blob (other kinds, lists, a field repeated or unknown) is parsed by protobuf."""
    size = len(blob)
    if size == 0:
        return None  # no field set
    tag = blob[0]
    if tag == _DOUBLE and size == 9:
        return _unpack_double(blob, 1)[0]
    if tag == _INT64 and size <= 11:  # a varint is at most 10 bytes
        value, shift, last = 0, 0, size - 1
        for i in range(1, size):
            byte = blob[i]
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                if i == last:
                    value &= (1 << 64) - 1
                    return value - (1 << 64) if value >= 1 << 63 else value
                break  # more follows the varint: not a lone int64
            shift += 7
    if tag == _STRING and 2 <= size <= 129 and blob[1] == size - 2:  # a one-byte length
        try:
            return blob[2:].decode()
        except UnicodeDecodeError:
            pass  # protobuf's own error
    return python_value(Value.FromString(blob))


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
