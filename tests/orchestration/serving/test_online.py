"""Online reads: lookups that must not wait (the event loop's) refuse instead of waiting for a
writer, and the service then answers from a thread; a poll that finds the registry unchanged
keeps the views it resolved; entity keys are Feast's."""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import UTC, datetime

import polars as pl
import pytest
from feast.infra.key_encoding_utils import serialize_entity_key
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import Value

from feature_repo.config import feature_store
from lakehouse.feast_online import db_path
from models.scoring.runs import current_predictions
from orchestration.serving.online import OnlineLookup, SqliteReads, WouldBlock
from tests.orchestration.serving.conftest import ServedWorld


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
