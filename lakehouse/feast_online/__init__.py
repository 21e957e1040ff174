"""Feast online store over SQLite with one row per entity and view (``PackedSqliteOnlineStore``).

``feature_store.yaml``::

    online_store:
      type: lakehouse.feast_online.PackedSqliteOnlineStore
      path: data/online_rows.db

Feast imports ``PackedSqliteOnlineStoreConfig`` from the module named in ``type`` and then the
store class from the config class's own module, so both names exist in both places.
"""

from lakehouse.feast_online.store import (
    TYPE,
    PackedSqliteOnlineStore,
    PackedSqliteOnlineStoreConfig,
    db_path,
    from_micros,
    micros,
    read_rows,
    table_name,
)

__all__ = [
    "TYPE",
    "PackedSqliteOnlineStore",
    "PackedSqliteOnlineStoreConfig",
    "db_path",
    "from_micros",
    "micros",
    "read_rows",
    "table_name",
]
