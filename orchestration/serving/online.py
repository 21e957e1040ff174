"""Online lookups: a use case's feature service and its latest batch score, from Feast's online
store.

Reads go through the online store's own interface (``OnlineStore.online_read``, what Feast's
``get_online_features`` calls), with the feature views and projections resolved once from the
registry (and again on every model poll) instead of on every call: one lookup is one read per
view. Values come back exactly as ``get_online_features`` returns them (the tests compare the
two). Each thread has its own online-store object, hence its own SQLite connection.

Like ``get_online_features``, a lookup returns the latest materialized row of each view, however
old; ``features_as_of`` (the oldest of the rows used) tells how fresh the features are.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import polars as pl
from feast import FeatureStore, FeatureView
from feast.infra.online_stores.helpers import get_online_store_from_config
from feast.infra.online_stores.online_store import OnlineStore
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
    def _store(self) -> OnlineStore:
        store = getattr(self._local, "store", None)
        if store is None:
            store = get_online_store_from_config(self._config.online_store)
            self._local.store = store
        return store

    def _keys(self, ids: Sequence[str]) -> list[EntityKey]:
        return [
            EntityKey(join_keys=[self._join_key], entity_values=[Value(string_val=i)]) for i in ids
        ]

    def features(self, ids: Sequence[str]) -> list[OnlineRow | None]:
        """The service's features of each id (None: the id is in no view), one read per view.

        A feature the online store has no value for (an entity missing from one view) is None,
        as in ``get_online_features``.
        """
        keys = self._keys(ids)
        views = self._views.features
        rows: list[dict[str, Any]] = [{} for _ in ids]
        found = [False] * len(ids)
        oldest: list[datetime | None] = [None] * len(ids)
        for view, names in views:
            read = self._store.online_read(self._config, view, keys, list(names))
            for i, (stamp, data) in enumerate(read):
                target = rows[i]
                if data is None:
                    for name in names:
                        target[name] = None
                    continue
                found[i] = True
                if stamp is not None and (oldest[i] is None or stamp < oldest[i]):  # type: ignore[operator]
                    oldest[i] = stamp
                for name in names:
                    proto = data.get(name)
                    target[name] = None if proto is None else python_value(proto)
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
        [(stamp, data)] = self._store.online_read(
            self._config, view, self._keys([entity_id]), list(PREDICTION_FIELDS)
        )
        if data is None or stamp is None:
            return None
        values = {name: python_value(data[name]) if name in data else None for name in data}
        return OnlineRow(values, stamp)

    def ping(self) -> None:
        """Raise unless the online store answers a read (of an id no entity has)."""
        views = self._views.features
        if views:
            view, names = views[0]
            self._store.online_read(self._config, view, self._keys([""]), list(names[:1]))


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
