"""Online reads: Feast ``Value`` blobs decoded as protobuf decodes them, lookups that must not
wait (the event loop's) refuse instead of waiting for a writer, and the service then answers
from a thread; a poll that finds the registry unchanged keeps the views it resolved."""

from __future__ import annotations

import math
import sqlite3
import threading
import time
from datetime import UTC, datetime

import polars as pl
import pytest
from feast.infra.key_encoding_utils import serialize_entity_key
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import (
    DoubleList,
    Int64List,
    Null,
    RepeatedValue,
    StringList,
    Value,
)
from google.protobuf.message import DecodeError

from feature_repo.config import feature_store
from lakehouse.feast_online import db_path
from models.scoring.runs import current_predictions
from orchestration.serving.online import (
    OnlineLookup,
    SqliteReads,
    WouldBlock,
    python_value,
    value_of,
    values_of,
)
from tests.orchestration.serving.conftest import ServedWorld

VALUES = [
    Value(),
    Value(null_val=Null.NULL),
    *(Value(double_val=x) for x in (0.0, -0.0, 1.5, -3.25e-300, 1e308, math.inf, -math.inf)),
    Value(double_val=math.nan),
    *(Value(int64_val=n) for n in (0, 1, 127, 128, 300, -1, -129, 2**62, 2**63 - 1, -(2**63))),
    *(Value(string_val=t) for t in ("", "a", "monthly", "é ü 中", "x" * 127, "y" * 128, "z" * 999)),
    Value(int32_val=-7),
    Value(float_val=0.1),
    Value(bool_val=True),
    Value(bool_val=False),
    Value(bytes_val=b"\x00\xff"),
    Value(unix_timestamp_val=1_700_000_000),
    Value(string_list_val=StringList(val=["R01", "R02"])),
    Value(double_list_val=DoubleList(val=[0.25, -1.0])),
    Value(int64_list_val=Int64List(val=[1, -2])),
]


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("value", VALUES, ids=lambda v: v.WhichOneof("val") or "empty")
def test_value_of_decodes_every_kind_as_protobuf_does(value: Value) -> None:
    blob = value.SerializeToString()
    assert _same(value_of(blob), python_value(Value.FromString(blob)))


@pytest.mark.parametrize(
    "blob",
    [
        Value(int64_val=5).SerializeToString() + Value(double_val=2.0).SerializeToString(),
        Value(double_val=1.0).SerializeToString() + Value(double_val=2.0).SerializeToString(),
        Value(int64_val=5).SerializeToString() + Value(int64_val=9).SerializeToString(),
        Value(string_val="a").SerializeToString() + Value(int64_val=9).SerializeToString(),
        b"\x20" + b"\xff" * 9 + b"\x7f",  # an over-long int64 varint: protobuf keeps 64 bits
    ],
    ids=["int-then-double", "double-twice", "int-twice", "string-then-int", "overlong-varint"],
)
def test_value_of_leaves_unusual_blobs_to_protobuf(blob: bytes) -> None:
    assert _same(value_of(blob), python_value(Value.FromString(blob)))


def test_value_of_refuses_what_protobuf_refuses() -> None:
    bad_utf8 = b"\x12\x02\xc3\x28"
    with pytest.raises(DecodeError):
        Value.FromString(bad_utf8)
    with pytest.raises(DecodeError):
        value_of(bad_utf8)


def test_values_of_decodes_a_row_as_protobuf_does() -> None:
    for values in (VALUES, VALUES[::-1], [], [Value(string_val="w" * 200), Value(int64_val=3)]):
        blob = RepeatedValue(val=values).SerializeToString()
        decoded = values_of(blob)
        expected = [python_value(v) for v in RepeatedValue.FromString(blob).val]
        assert len(decoded) == len(expected)
        assert all(_same(a, b) for a, b in zip(decoded, expected, strict=True))


def test_values_of_refuses_a_truncated_row() -> None:
    blob = RepeatedValue(val=[Value(double_val=1.0), Value(double_val=2.0)]).SerializeToString()
    with pytest.raises(DecodeError):
        values_of(blob[:-3])


def test_entity_keys_are_serialized_as_feast_serializes_them(world_env: ServedWorld) -> None:
    config = feature_store(world_env.world.lake.uri).config
    ids = ["C00000001", "", "é ü 中", "x" * 300]
    expected = [
        serialize_entity_key(
            EntityKey(join_keys=["customer_id"], entity_values=[Value(string_val=i)]),
            entity_key_serialization_version=config.entity_key_serialization_version,
        )
        for i in ids
    ]
    assert SqliteReads(config, "customer_id").keys(ids) == expected


def _writer_holding_the_store(world_env: ServedWorld) -> sqlite3.Connection:
    """A connection holding the SQLite online store locked, as a committing writer does."""
    path = db_path(feature_store(world_env.world.lake.uri).config)
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute("BEGIN EXCLUSIVE")
    return writer


def _some_customer(world_env: ServedWorld) -> str:
    """A customer scored on the last day (so with a cached score online)."""
    world = world_env.world
    day = world.days[-1]
    scored = current_predictions(world.lake, world.use_case.tables.scoring)
    return str(scored.filter(pl.col("as_of_date") == day).collect()["customer_id"].min())


def test_a_lookup_that_must_not_wait_refuses_while_a_writer_holds_the_store(
    world_env: ServedWorld,
) -> None:
    store = feature_store(world_env.world.lake.uri)
    lookup = OnlineLookup(store, world_env.world.use_case)
    customer = _some_customer(world_env)
    expected = lookup.prediction(customer)
    assert expected is not None and lookup.prediction(customer, wait=False) == expected
    writer = _writer_holding_the_store(world_env)
    try:
        started = time.perf_counter()
        with pytest.raises(WouldBlock, match="locked"):
            lookup.prediction(customer, wait=False)
        assert time.perf_counter() - started < 0.5  # refused, not waited for
    finally:
        writer.rollback()
        writer.close()
    assert lookup.prediction(customer, wait=False) == expected


def test_a_cached_lookup_waits_for_a_writer_on_a_thread(
    running: tuple, world_env: ServedWorld
) -> None:
    _, client = running
    customer = _some_customer(world_env)
    path = f"/v1/churn/entities/{customer}/score"
    expected = client.get(path).json()
    writer = _writer_holding_the_store(world_env)
    released = threading.Timer(0.3, lambda: (writer.rollback(), writer.close()))
    released.start()
    try:
        started = time.perf_counter()
        answer = client.get(path)
        waited = time.perf_counter() - started
    finally:
        released.join()
    assert answer.status_code == 200
    assert answer.json() == expected
    assert waited >= 0.25  # answered once the writer let go, not refused
    assert answer.headers["Server-Timing"].startswith("app;dur=")


def test_a_poll_keeps_the_views_while_the_registry_is_unchanged(world_env: ServedWorld) -> None:
    store = feature_store(world_env.world.lake.uri)
    lookup = OnlineLookup(store, world_env.world.use_case)
    views = lookup._views
    lookup.refresh(store)
    assert lookup._views is views  # nothing resolved again
    view = store.get_feature_view(world_env.world.use_case.features.views[0].name)
    original = view.description
    view.description = f"changed {datetime.now(UTC).isoformat()}"
    applier = feature_store(world_env.world.lake.uri)
    applier.apply([view])
    try:
        lookup.refresh(store)
        assert lookup._views is not views
        resolved = {v.name: v for v, _ in lookup._views.features}
        assert resolved[view.name].description == view.description
    finally:
        view.description = original
        applier.apply([view])
