"""Online lookups: a use case's feature service and its latest batch score, from Feast's online
store.

Reads go through the online store's own interface (``OnlineStore.online_read``, what Feast's
``get_online_features`` calls: ``StoreReads``), with the feature views and projections resolved
once from the registry (and again on every model poll) instead of on every call: one lookup is
one read per view. Values come back exactly as ``get_online_features`` returns them (the tests
compare the two). Each thread has its own reader, hence its own connection.

The local SQLite store (``lakehouse.feast_online``: one row per entity and view) is read by its
table layout instead (``SqliteReads``, tested equal to its ``online_read``): the keys serialized
once for all views, a view's rows decoded straight from their wire format to Python in one pass
(``wire.rows_of``), the file read through a memory map. A lookup of 100 entities over four views
takes about 3.9 ms (4.3 ms decoding row by row, paired in one process); through Feast's own
SQLite store (a row per feature, 3,700 rows) it took 13 ms, more than the rest of their
on-demand scoring.

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
from typing import Any

import orjson
import polars as pl
from feast import FeatureStore, FeatureView, RepoConfig
from feast.infra.key_encoding_utils import serialize_entity_key
from feast.infra.online_stores.helpers import get_online_store_from_config
from feast.infra.online_stores.online_store import OnlineStore
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import Value

from lakehouse.feast_online import TYPE as PACKED_SQLITE
from lakehouse.feast_online import db_path, from_micros, read_rows, table_name
from models.scoring.online import SERVED_FIELDS
from models.usecase import UseCase
from orchestration.serving.wire import python_value, rows_of, warm

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
        out: list[Read] = []
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
    """Reads of the packed SQLite online store (``lakehouse.feast_online``) by its table layout:
    one row per entity and view, its values a serialized ``RepeatedValue`` decoded by
    ``values_of`` (the named features kept), on a read-only connection of its own.

    ``wait=False``: the connection never waits for a lock (a writer committing) and a read that
    would raises ``WouldBlock``.
    """

    def __init__(self, config: RepoConfig, join_key: str, *, wait: bool = True) -> None:
        self._config = config
        self._path = db_path(config).resolve()
        self._key_version = config.entity_key_serialization_version
        self._join_key = join_key
        self._wait = wait
        self._conn: sqlite3.Connection | None = None
        self._names: dict[str, tuple[str, ...]] = {}  # a row's ``names`` text, parsed
        self._moments: dict[int, datetime] = {}
        self._key_head = _string_key_head(join_key, self._key_version)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            uri = f"{self._path.as_uri()}?mode=ro"
            timeout = 5.0 if self._wait else 0.0  # sqlite3's default wait for a lock, or none
            self._conn = sqlite3.connect(uri, uri=True, timeout=timeout, check_same_thread=True)
            # Pages read through a memory map, not one system call each: a lookup of 100
            # entities touches some 800 pages scattered over the file. The map is the OS's page
            # cache, shared by every connection; SQLite stays correct while another process
            # writes the file.
            self._conn.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
        return self._conn

    def keys(self, ids: Sequence[str]) -> list[bytes]:
        """Feast's serialized entity keys of ``ids``."""
        head = self._key_head
        if head is not None:
            encoded = [i.encode() for i in ids]
            return [b"".join((head, _pack_length(len(e)), e)) for e in encoded]
        version = self._key_version
        return [
            serialize_entity_key(k, entity_key_serialization_version=version)
            for k in entity_keys(self._join_key, ids)
        ]

    def read(
        self, views: Sequence[tuple[FeatureView, Sequence[str]]], ids: Sequence[str]
    ) -> list[Read]:
        """For each view, the named features of each id, as Python values."""
        keys = self.keys(ids)
        return [self._read_view(view, names, keys) for view, names in views]

    def _read_view(self, view: FeatureView, names: Sequence[str], keys: list[bytes]) -> Read:
        table = table_name(self._config, view)
        wanted = frozenset(names)
        try:
            fetched = read_rows(self._connection(), table, keys)
        except sqlite3.OperationalError as exc:
            if not self._wait and "locked" in str(exc):
                raise WouldBlock(f"{table}: {exc}") from exc
            raise
        found: dict[bytes, tuple[int, dict[str, Any]]] = {}
        decoded = rows_of([blob for *_, blob in fetched])
        for (entity, stamp, stored, _), row in zip(fetched, decoded, strict=True):
            order = self._names.get(stored)
            if order is None:
                order = self._names[stored] = tuple(orjson.loads(stored))
            values = zip(order, row, strict=True)
            if wanted.issuperset(order):
                found[entity] = (stamp, dict(values))
            else:
                found[entity] = (stamp, {n: v for n, v in values if n in wanted})
        out: Read = []
        for entity in keys:
            row = found.get(entity)
            out.append((None, None) if row is None else (self._moment(row[0]), row[1]))
        return out

    def _moment(self, stamp: int) -> datetime:
        """``from_micros(stamp)``, remembered: the rows of one materialization share a time."""
        moment = self._moments.get(stamp)
        if moment is None:
            if len(self._moments) >= 4096:
                self._moments.clear()
            moment = self._moments[stamp] = from_micros(stamp)
        return moment


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
        if self._sqlite:
            warm()

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
        return self._config.online_store.type == PACKED_SQLITE

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
                if len(data) == len(names):  # a read keeps only the names asked for
                    target.update(data)
                else:
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


MMAP_BYTES = 1 << 30
"""The most of the online store file a reader maps (address space, not memory)."""
_pack_length = struct.Struct("<I").pack


def _string_key_head(join_key: str, version: int) -> bytes | None:
    """The bytes Feast's ``serialize_entity_key`` puts before a string id's length and bytes,
    or None should a probe show that its format is not that (then Feast's function is used)."""
    whole = serialize_entity_key(
        EntityKey(join_keys=[join_key], entity_values=[Value(string_val="probe-é")]),
        entity_key_serialization_version=version,
    )
    tail = _pack_length(len("probe-é".encode())) + "probe-é".encode()
    return whole[: -len(tail)] if whole.endswith(tail) else None
