"""Materialization into the online store, with a direct writer for Redis.

``materialize(store, start, end, views)`` is ``store.materialize`` for every online store but
Redis. For Redis it reads the same rows Feast would (the offline store's latest row per entity
in the window) and writes them in Feast's own Redis format, so the unmodified Feast SDK and
feature server read them back (``get_online_features``):

* key: Feast's serialized entity key (version 3) followed by the project name;
* hash fields: ``mmh3("<view>:<feature>")`` (4 bytes) → the serialized ``ValueProto``, and
  ``_ts:<view>`` → the serialized ``Timestamp`` of the row's event time;
* a row is skipped when the stored ``_ts`` is as new or newer, as Feast's writer does.

What makes it faster than Feast's path (which builds a Python protobuf object per value and a
Python dict per entity): values are encoded column by column with numpy and Arrow (protobuf
wire format: tag, varint, fixed 64-bit), whole ``HSET`` commands are assembled in Arrow, and
each batch goes to Redis as one buffer; memory holds one batch of entities at a time. Types
without a vectorized encoder (lists) are converted by Feast's own function, so every byte
written is the byte Feast would write (tests compare both).

Only a plain Redis (not a cluster: the stored-timestamp read is one script over many keys) and
views with one string join key take this path; anything else goes to ``store.materialize``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from feast import FeatureStore, FeatureView
from feast.data_source import DataSource
from feast.infra.online_stores.helpers import _mmh3
from feast.infra.online_stores.redis import RedisOnlineStore, _versioned_fv_name
from feast.protos.feast.types.Value_pb2 import Value as ValueProto
from feast.type_map import python_values_to_proto_values
from feast.utils import _get_column_names
from feast.value_type import ValueType

from lakehouse.feast_online import TYPE as PACKED_SQLITE

BATCH_ROWS = 100_000
"""Entities encoded and sent at once: bounds the writer's memory (about 50 MB a batch)."""

# Field numbers of feast.types.Value (wire format tags: number << 3 | wire type).
_TAG_INT64 = 4 << 3 | 0
_TAG_DOUBLE = 5 << 3 | 1
_TAG_STRING = 2 << 3 | 2
_TAG_UNIX_TIMESTAMP = 8 << 3 | 0
_STRING_TYPE = struct.pack("<I", ValueType.STRING.value)

_STORED_TIMESTAMPS = """
local stamps = {}
for i, key in ipairs(KEYS) do stamps[i] = redis.call('HGET', key, ARGV[1]) or false end
return stamps
"""
"""The stored ``_ts`` of many keys in one round trip (a pipeline of HMGETs costs a Python call
per key)."""


@dataclass(frozen=True)
class Materialized:
    """What the writer did for one view: rows read, written, skipped as not newer."""

    view: str
    rows: int
    written: int
    skipped: int


def materialize(
    store: FeatureStore,
    start: datetime,
    end: datetime,
    feature_views: Sequence[str],
    *,
    batch_rows: int = BATCH_ROWS,
) -> list[Materialized]:
    """Materialize ``feature_views`` for event times in ``(start, end]`` into the online store.

    Redis: the direct writer, then the materialization interval is recorded in the registry as
    Feast records it. Other stores: ``store.materialize`` (nothing is returned then).
    """
    views = [store.get_feature_view(name) for name in feature_views]
    if not all(_direct(store, view) for view in views):
        store.materialize(start_date=start, end_date=end, feature_views=list(feature_views))
        return []
    done = []
    for view in views:
        done.append(_materialize_view(store, view, start, end, batch_rows))
        store.registry.apply_materialization(view, store.project, start, end)
    return done


def online_store_name(store: FeatureStore) -> str:
    """``sqlite <path>`` or ``redis <host:port>``: where the online rows went (no password)."""
    online = store.config.online_store
    if getattr(online, "type", None) == "redis":
        return "redis " + online.connection_string.split(",")[0]
    if getattr(online, "type", None) == PACKED_SQLITE:
        return f"sqlite {online.path}"
    return f"{getattr(online, 'type', 'online store')} {getattr(online, 'path', '')}".strip()


def _direct(store: FeatureStore, view: FeatureView) -> bool:
    online = store.config.online_store
    if getattr(online, "type", None) != "redis" or str(online.redis_type.value) != "redis":
        return False
    columns = view.entity_columns
    return len(columns) == 1 and columns[0].dtype.to_value_type() == ValueType.STRING


def _materialize_view(
    store: FeatureStore, view: FeatureView, start: datetime, end: datetime, batch_rows: int
) -> Materialized:
    entities = [store.get_entity(name) for name in view.entities]
    join_keys, features, timestamp, created = _get_column_names(view, entities)
    source = _source(view)
    offline = store._get_provider().offline_store  # the offline store Feast materializes from
    job = offline.pull_latest_from_table_or_query(
        config=store.config,
        data_source=source,
        join_key_columns=join_keys,
        feature_name_columns=features,
        timestamp_field=timestamp,
        created_timestamp_column=created,
        start_date=start,
        end_date=end,
    )
    table = job.to_arrow()
    mapping = source.field_mapping or {}
    if mapping:
        table = table.rename_columns([mapping.get(c, c) for c in table.column_names])
    writer = RedisWriter(store, view)
    written = skipped = 0
    for batch in table.to_batches(max_chunksize=batch_rows):
        done, passed = writer.write(pa.Table.from_batches([batch]))
        written, skipped = written + done, skipped + passed
    return Materialized(view.name, table.num_rows, written, skipped)


def _source(view: FeatureView) -> DataSource:
    if view.batch_source is None:
        raise ValueError(f"feature view {view.name} has no batch source: nothing to materialize")
    return view.batch_source


class RedisWriter:
    """Writes feature rows of one view in Feast's Redis format (see the module docstring)."""

    def __init__(self, store: FeatureStore, view: FeatureView) -> None:
        self.config = store.config
        self.view = view
        self.project = store.project
        self.client = RedisOnlineStore()._get_client(store.config.online_store)
        self.name = _versioned_fv_name(view, store.config)
        self.ts_field = f"_ts:{self.name}".encode()
        self.join_key = view.entity_columns[0].name
        self.timestamp = _source(view).timestamp_field
        self.fields = [(f.name, f.dtype.to_value_type()) for f in view.features]
        self.hashes = [_mmh3(f"{self.name}:{name}") for name, _ in self.fields]
        self.ttl = self.config.online_store.key_ttl_seconds
        self._stamps = self.client.register_script(_STORED_TIMESTAMPS)

    def write(self, table: pa.Table) -> tuple[int, int]:
        """Write the rows of ``table`` that are newer than what is stored: (written, skipped)."""
        if table.num_rows == 0:
            return 0, 0
        keys = redis_keys(table.column(self.join_key), self.join_key, self.project)
        seconds, nanos = _timestamps(table.column(self.timestamp))
        newer = self._newer(keys, seconds * 1_000_000_000 + nanos)
        if not newer.all():
            mask = pa.array(newer)
            table, keys = table.filter(mask), keys.filter(mask)
            seconds, nanos = seconds[newer], nanos[newer]
        if table.num_rows:
            values = [encode_values(table.column(name), kind) for name, kind in self.fields]
            stamps = timestamp_protos(seconds, nanos)
            self._send(_hset_commands(keys, [self.ts_field, *self.hashes], [stamps, *values]))
        return table.num_rows, len(newer) - table.num_rows

    def _newer(self, keys: pa.Array, stamps: np.ndarray) -> np.ndarray:
        """True where the stored ``_ts`` is missing or older (Feast skips rows not newer)."""
        stored = self._stamps(keys=keys.to_pylist(), args=[self.ts_field])
        previous = np.array([_timestamp_nanos(raw) if raw else 0 for raw in stored], dtype=np.int64)
        return (previous == 0) | (stamps > previous)

    def _send(self, commands: pa.Array) -> None:
        """One buffer of commands, then one reply per command (any error reply raises)."""
        connection = self.client.connection_pool.get_connection()
        try:
            connection.send_packed_command([_buffer(commands)], check_health=True)
            failures = []
            for _ in range(len(commands) * (2 if self.ttl else 1)):
                reply = connection.read_response(disable_decoding=True)
                if isinstance(reply, Exception):
                    failures.append(reply)
            if failures:
                raise RuntimeError(
                    f"Redis refused {len(failures)} writes of feature view {self.view.name}: "
                    f"{failures[0]}"
                )
        except BaseException:
            connection.disconnect()  # unread replies must not reach the next command
            raise
        finally:
            self.client.connection_pool.release(connection)


# ---------------------------------------------------------------------------- encoders
def redis_keys(ids: pa.ChunkedArray | pa.Array, join_key: str, project: str) -> pa.Array:
    """Feast's Redis key of each string id: the serialized entity key (version 3: key count,
    then type, length and bytes of the key name and of the value) followed by the project."""
    ids = _combined(ids).cast(pa.binary())
    if ids.null_count:
        raise ValueError(f"{ids.null_count} null entity ids: every online row needs its key")
    name = join_key.encode()
    prefix = struct.pack("<I", 1) + _STRING_TYPE + struct.pack("<I", len(name)) + name
    lengths = _fixed32(pc.binary_length(ids).to_numpy(zero_copy_only=False).astype(np.uint32))
    return pc.binary_join_element_wise(prefix + _STRING_TYPE, lengths, ids, project.encode(), b"")


def encode_values(column: pa.ChunkedArray | pa.Array, kind: ValueType) -> pa.Array:
    """The serialized ``ValueProto`` of each value (``b""`` for null and NaN, as Feast)."""
    array = _combined(column)
    if kind == ValueType.DOUBLE:
        values = pc.fill_null(array.cast(pa.float64()), np.nan).to_numpy(zero_copy_only=False)
        present = ~np.isnan(values)
        return _tagged(_TAG_DOUBLE, _fixed64(values), present)
    if kind in (ValueType.INT64, ValueType.UNIX_TIMESTAMP) and pa.types.is_integer(array.type):
        present = ~array.is_null().to_numpy(zero_copy_only=False)
        numbers = pc.fill_null(array.cast(pa.int64()), 0).to_numpy(zero_copy_only=False)
        tag = _TAG_INT64 if kind == ValueType.INT64 else _TAG_UNIX_TIMESTAMP
        return _tagged(tag, varints(numbers.view(np.uint64)), present)
    if kind == ValueType.STRING and (
        pa.types.is_string(array.type) or pa.types.is_large_string(array.type)
    ):
        present = ~array.is_null().to_numpy(zero_copy_only=False)
        raw = pc.fill_null(array.cast(pa.large_binary()), b"").cast(pa.binary())
        lengths = pc.binary_length(raw).to_numpy(zero_copy_only=False).astype(np.uint64)
        body = pc.binary_join_element_wise(varints(lengths), raw, b"")
        return _tagged(_TAG_STRING, body, present)
    # Everything else (lists, other types) exactly as Feast converts it, value by value.
    protos = python_values_to_proto_values(array.to_numpy(zero_copy_only=False), kind)
    return pa.array([p.SerializeToString() for p in protos], type=pa.binary())


def timestamp_protos(seconds: np.ndarray, nanos: np.ndarray) -> pa.Array:
    """Serialized ``google.protobuf.Timestamp`` (fields omitted when zero, as protobuf does)."""
    empty = _empty(len(seconds))
    secs = _tagged(1 << 3, varints(seconds.astype(np.int64).view(np.uint64)), seconds != 0, empty)
    nano = _tagged(2 << 3, varints(nanos.astype(np.uint64)), nanos != 0, empty)
    return pc.binary_join_element_wise(secs, nano, b"")


def varints(values: np.ndarray) -> pa.Array:
    """Protobuf varint of each unsigned 64-bit value."""
    values = np.ascontiguousarray(values, dtype=np.uint64)
    groups = np.stack([(values >> np.uint64(7 * i)) & np.uint64(0x7F) for i in range(10)], 1)
    length = np.ones(len(values), dtype=np.int64)
    for i in range(1, 10):
        length[values >= np.uint64(1) << np.uint64(7 * i)] = i + 1
    continuation = np.arange(10)[None, :] < (length[:, None] - 1)
    encoded = (groups | (continuation.astype(np.uint64) << np.uint64(7))).astype(np.uint8)
    keep = np.arange(10)[None, :] < length[:, None]
    return _binary(encoded[keep], length)


def _tagged(
    tag: int, body: pa.Array, present: np.ndarray, empty: pa.Array | None = None
) -> pa.Array:
    """``tag + body`` where ``present``, ``b""`` elsewhere."""
    joined = pc.binary_join_element_wise(bytes([tag]), body, b"")
    blank = empty if empty is not None else _empty(len(body))
    return pc.if_else(pa.array(present), joined, blank)


def _hset_commands(keys: pa.Array, fields: list[bytes], values: list[pa.Array]) -> pa.Array:
    """``HSET key field value …`` per row in the Redis protocol (RESP arrays of bulk strings)."""
    parts: list[pa.Array | bytes] = [f"*{2 + 2 * len(fields)}\r\n$4\r\nHSET\r\n".encode()]
    parts += [*_bulk(keys)]
    for name, value in zip(fields, values, strict=True):
        parts.append(b"$%d\r\n%s\r\n" % (len(name), name))
        parts += [*_bulk(value)]
    return pc.binary_join_element_wise(*parts, b"")


def _bulk(values: pa.Array) -> tuple[pa.Array, pa.Array, bytes]:
    """A RESP bulk string per value: ``$<length>\\r\\n<bytes>\\r\\n``."""
    lengths = pc.cast(pc.binary_length(values), pa.string()).cast(pa.binary())
    return pc.binary_join_element_wise(b"$", lengths, b"\r\n", b""), values, b"\r\n"


def _buffer(array: pa.Array) -> memoryview:
    """The concatenated bytes of a binary array, without copying them into Python objects."""
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int32)[
        array.offset : array.offset + len(array) + 1
    ]
    return memoryview(array.buffers()[2])[int(offsets[0]) : int(offsets[-1])]


def _binary(data: np.ndarray, lengths: np.ndarray) -> pa.Array:
    offsets = np.zeros(len(lengths) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    return pa.Array.from_buffers(
        pa.binary(), len(lengths), [None, pa.py_buffer(offsets), pa.py_buffer(data.tobytes())]
    )


def _empty(rows: int) -> pa.Array:
    return _binary(np.zeros(0, dtype=np.uint8), np.zeros(rows, dtype=np.int64))


def _fixed32(values: np.ndarray) -> pa.Array:
    raw = np.ascontiguousarray(values, dtype="<u4").view(np.uint8)
    return _binary(raw, np.full(len(values), 4, dtype=np.int64))


def _fixed64(values: np.ndarray) -> pa.Array:
    raw = np.ascontiguousarray(values, dtype="<f8").view(np.uint8)
    return _binary(raw, np.full(len(values), 8, dtype=np.int64))


def _combined(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


def _timestamps(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Seconds and nanoseconds since the epoch of each (UTC) event time."""
    array = _combined(column)
    if array.null_count:
        raise ValueError(f"{array.null_count} rows without an event timestamp")
    nanos = array.cast(pa.timestamp("ns", tz="UTC")).cast(pa.int64()).to_numpy()
    return nanos // 1_000_000_000, nanos % 1_000_000_000


def _timestamp_nanos(raw: bytes) -> int:
    from google.protobuf.timestamp_pb2 import Timestamp

    stamp = Timestamp.FromString(raw)
    return int(stamp.seconds) * 1_000_000_000 + int(stamp.nanos)


Encoder = Callable[[pa.Array, ValueType], pa.Array]
__all__ = [
    "Materialized",
    "RedisWriter",
    "ValueProto",
    "encode_values",
    "materialize",
    "redis_keys",
    "timestamp_protos",
    "varints",
]
