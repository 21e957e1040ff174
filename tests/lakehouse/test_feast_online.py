"""The packed SQLite online store (``lakehouse.feast_online``): Feast reads back from it what
Feast's own SQLite store gives for the same writes (every kind of value, missing entities,
nulls), a write naming some features keeps the others, large reads are chunked, and ``apply``
creates and drops the views' tables."""

from __future__ import annotations

import math
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from feast import Entity, FeatureStore, FeatureView, Field
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import Value
from feast.types import Array, Bool, Float32, Float64, Int64, String, UnixTimestamp
from feast.value_type import ValueType

import lakehouse.feast_online.store as packed
from lakehouse.feast_delta import DeltaSource
from lakehouse.feast_delta.testing import write_feature_store_yaml
from lakehouse.feast_online import db_path

T0 = datetime(2024, 6, 1, 12, 30, 15, 250_000, tzinfo=UTC)
CUSTOMER = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.STRING)
SCHEMA = [
    Field(name="spend", dtype=Float64),
    Field(name="ratio", dtype=Float32),
    Field(name="sessions", dtype=Int64),
    Field(name="plan", dtype=String),
    Field(name="active", dtype=Bool),
    Field(name="seen_at", dtype=UnixTimestamp),
    Field(name="codes", dtype=Array(String)),
    Field(name="weights", dtype=Array(Float64)),
]
NAMES = [f.name for f in SCHEMA]


def _view(name: str = "activity", schema: list[Field] = SCHEMA) -> FeatureView:
    source = DeltaSource(name=f"{name}_source", path=f"features/{name}", timestamp_field="ts")
    return FeatureView(
        name=name, entities=[CUSTOMER], ttl=timedelta(days=7), source=source, schema=schema
    )


def _store(root: Path, online: str | None = None) -> FeatureStore:
    root.mkdir(parents=True, exist_ok=True)
    write_feature_store_yaml(root, project="online_test")
    if online is not None:  # another online store, same everything else
        yaml = root / "feature_store.yaml"
        text = yaml.read_text().replace(
            "  type: lakehouse.feast_online.PackedSqliteOnlineStore\n", f"  type: {online}\n"
        )
        yaml.write_text(text)
    store = FeatureStore(repo_path=str(root))
    store.apply([CUSTOMER, _view()])
    return store


def _frame() -> pd.DataFrame:
    n = 6
    return pd.DataFrame(
        {
            "customer_id": [f"C{i}" for i in range(n)],
            "ts": [T0 + timedelta(minutes=i) for i in range(n)],
            "spend": [0.1, -0.0, 1e308, math.nan, None, 3.25e-300],
            "ratio": [0.5, 0.25, None, 1.0, 2.0, -3.5],
            "sessions": pd.array([0, 127, 128, -1, None, 2**53], dtype="Int64"),
            "plan": ["monthly", "", "é ü 中", None, "x" * 300, "annual"],
            "active": pd.array([True, False, None, True, False, True], dtype="boolean"),
            "seen_at": [T0 - timedelta(days=i) for i in range(n)],
            "codes": [["R01", "R02"], [], ["R03"], None, ["R04"] * 40, ["é"]],
            "weights": [[0.25, -1.0], [], [math.inf], None, [1e-300], [2.0]],
        }
    )


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or (
            a == b and math.copysign(1, a) == math.copysign(1, b)
        )
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _online(store: FeatureStore, ids: list[str]) -> dict[str, list[object]]:
    return store.get_online_features(
        features=[f"activity:{n}" for n in NAMES], entity_rows=[{"customer_id": i} for i in ids]
    ).to_dict()


def test_feast_reads_back_what_its_own_sqlite_store_gives(tmp_path: Path) -> None:
    ours = _store(tmp_path / "packed")
    theirs = _store(tmp_path / "feast", online="sqlite")
    for store in (ours, theirs):
        store.write_to_online_store("activity", _frame())
    ids = [*(f"C{i}" for i in range(6)), "no-such-customer"]
    got, expected = _online(ours, ids), _online(theirs, ids)
    assert set(got) == set(expected) == {"customer_id", *NAMES}
    for name in NAMES:
        assert len(got[name]) == len(ids)
        for a, b in zip(got[name], expected[name], strict=True):
            assert _same(a, b), (name, a, b)
    assert got["plan"][-1] is None and got["spend"][0] == 0.1


def _key(customer: str) -> EntityKey:
    return EntityKey(join_keys=["customer_id"], entity_values=[Value(string_val=customer)])


def _read(store: FeatureStore, ids: list[str], features: list[str] | None = None) -> list:
    view = store.get_feature_view("activity")
    online = packed.PackedSqliteOnlineStore()
    return online.online_read(store.config, view, [_key(i) for i in ids], features)


def test_event_times_come_back_to_the_microsecond(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.write_to_online_store("activity", _frame())
    read = _read(store, ["C0", "C5", "nobody"])
    assert [stamp for stamp, _ in read] == [T0, T0 + timedelta(minutes=5), None]
    assert read[2] == (None, None)


def test_a_write_naming_some_features_keeps_the_others(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.write_to_online_store("activity", _frame())
    view = store.get_feature_view("activity")
    later = T0 + timedelta(hours=1)
    packed.PackedSqliteOnlineStore().online_write_batch(
        store.config,
        view,
        [(_key("C0"), {"spend": Value(double_val=9.5)}, later, None)],
        None,
    )
    [(stamp, values)] = _read(store, ["C0"])
    assert stamp == later
    assert values is not None and set(values) == set(NAMES)
    assert values["spend"].double_val == 9.5
    assert values["plan"].string_val == "monthly" and values["sessions"].int64_val == 0
    [(_, some)] = _read(store, ["C0"], ["plan", "spend"])
    assert some is not None and set(some) == {"plan", "spend"}


def test_the_last_row_of_an_entity_in_one_batch_wins(tmp_path: Path) -> None:
    store = _store(tmp_path)
    view = store.get_feature_view("activity")
    rows = [
        (_key("C9"), {"spend": Value(double_val=1.0), "plan": Value(string_val="a")}, T0, None),
        (_key("C9"), {"spend": Value(double_val=2.0)}, T0 + timedelta(seconds=1), None),
    ]
    packed.PackedSqliteOnlineStore().online_write_batch(store.config, view, rows, None)
    [(stamp, values)] = _read(store, ["C9"])
    assert stamp == T0 + timedelta(seconds=1)
    assert values is not None
    assert values["spend"].double_val == 2.0 and values["plan"].string_val == "a"


def test_reads_more_keys_than_one_query_binds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _store(tmp_path)
    store.write_to_online_store("activity", _frame())
    monkeypatch.setattr(packed, "KEYS_PER_QUERY", 2)
    ids = ["C5", "nobody", "C0", "C3", "C1"]
    read = _read(store, ids, ["plan"])
    plans = [
        None if v is None else v["plan"].WhichOneof("val") and v["plan"].string_val for _, v in read
    ]
    assert plans == ["annual", None, "monthly", None, ""]


def _tables(store: FeatureStore) -> set[str]:
    with sqlite3.connect(db_path(store.config)) as connection:
        return {r[0] for r in connection.execute("SELECT name FROM sqlite_master")}


def test_apply_creates_and_drops_the_views_tables(tmp_path: Path) -> None:
    store = _store(tmp_path)
    other = _view("billing", [Field(name="owed", dtype=Float64)])
    store.apply([other])
    assert {"online_test_activity", "online_test_billing"} <= _tables(store)
    store.apply([], objects_to_delete=[other], partial=False)
    assert "online_test_billing" not in _tables(store)
    assert "online_test_activity" in _tables(store)
