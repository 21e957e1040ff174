"""Feast offline store and data source over Delta Lake tables, computed with polars.

``feature_store.yaml``::

    offline_store:
      type: lakehouse.feast_delta.DeltaOfflineStore

Feast loads ``DeltaOfflineStoreConfig`` from this package (the module named in ``type``),
so both classes are re-exported here. See ``docs/feast_offline_store.md``.
"""

from lakehouse.feast_delta.errors import (
    DeltaSchemaError,
    DeltaSnapshotUnavailableError,
    DeltaTableNotFoundError,
    EntityFrameError,
)
from lakehouse.feast_delta.job import DeltaRetrievalJob, DeltaRetrievalMetadata
from lakehouse.feast_delta.pit_join import FeatureFrame, point_in_time_join
from lakehouse.feast_delta.source import LAKEHOUSE_URI_ENV, DeltaSource, resolve_table_uri
from lakehouse.feast_delta.store import DeltaOfflineStore, DeltaOfflineStoreConfig

__all__ = [
    "LAKEHOUSE_URI_ENV",
    "DeltaOfflineStore",
    "DeltaOfflineStoreConfig",
    "DeltaRetrievalJob",
    "DeltaRetrievalMetadata",
    "DeltaSchemaError",
    "DeltaSnapshotUnavailableError",
    "DeltaSource",
    "DeltaTableNotFoundError",
    "EntityFrameError",
    "FeatureFrame",
    "point_in_time_join",
    "resolve_table_uri",
]
