"""DeltaSource and DeltaOfflineStore: configuration, snapshots, semantics and bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake
from feast import Entity, FeatureService, FeatureStore, FeatureView, Field, FileSource
from feast.data_source import DataSource
from feast.infra.offline_stores.offline_utils import get_offline_store_from_config
from feast.repo_config import get_offline_config_from_type
from feast.types import Float64, Int64
from feast.value_type import ValueType

from lakehouse.feast_delta import (
    LAKEHOUSE_URI_ENV,
    DeltaOfflineStore,
    DeltaOfflineStoreConfig,
    DeltaSchemaError,
    DeltaSnapshotUnavailableError,
    DeltaSource,
    DeltaTableNotFoundError,
    EntityFrameError,
)
from lakehouse.feast_delta.testing import write_feature_store_yaml

T0 = datetime(2024, 5, 1, tzinfo=UTC)
DAY = timedelta(days=1)
CUSTOMER = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.INT64)


def _ts(*values: datetime) -> pa.Array:
    return pa.array(values, pa.timestamp("us", tz="UTC"))


def activity_table(value_offset: int = 0) -> pa.Table:
    return pa.table(
        {
            "customer_id": pa.array([1, 1, 2, 2, 3], pa.int64()),
            "ts": _ts(T0, T0 + DAY, T0, T0, T0 - 10 * DAY),
            "created": _ts(T0, T0, T0, T0 + DAY, T0),
            "value": pa.array([v + value_offset for v in (10, 11, 20, 21, 30)], pa.int64()),
            "spend": [1.5, 2.5, 3.5, None, 5.5],
            "plan": ["a", "b", "c", "d", "e"],
        }
    )


def _view(name: str, source: DeltaSource, ttl: timedelta = 2 * DAY) -> FeatureView:
    return FeatureView(
        name=name,
        entities=[CUSTOMER],
        ttl=ttl,
        source=source,
        schema=[Field(name="value", dtype=Int64), Field(name="spend", dtype=Float64)],
    )


def _source(name: str, path: str = "features/activity", **kwargs: Any) -> DeltaSource:
    return DeltaSource(name=name, path=path, timestamp_field="ts", **kwargs)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[FeatureStore, Path]:
    root = tmp_path_factory.mktemp("offline_repo")
    write_feature_store_yaml(root, offline_options={"lakehouse_uri": "lake"})
    write_deltalake(root / "lake" / "features" / "activity", activity_table())
    activity = _view("activity", _source("activity_src", created_timestamp_column="created"))
    views = [
        activity,
        _view("no_table", _source("missing_src", "features/does_not_exist")),
        _view("bad_mapping", _source("mapped_src", field_mapping={"value_v2": "value"})),
        _view("plans", _source("plans_src", created_timestamp_column="created"), ttl=timedelta(0)),
    ]
    referrals = FeatureService(
        name="referrals",
        features=[activity.with_name("referrer").with_join_key_map({"customer_id": "referrer_id"})],
    )
    store = FeatureStore(repo_path=str(root))
    store.apply([CUSTOMER, *views, referrals])
    return store, root


def _entities(*rows: tuple[int, datetime]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["customer_id", "event_timestamp"])


# --------------------------------------------------------------------------- configuration


def test_feature_store_yaml_type_resolves_to_our_classes(repo: tuple[FeatureStore, Path]) -> None:
    store, _ = repo
    assert get_offline_config_from_type("lakehouse.feast_delta.DeltaOfflineStore") is (
        DeltaOfflineStoreConfig
    )
    assert isinstance(store.config.offline_store, DeltaOfflineStoreConfig)
    assert isinstance(get_offline_store_from_config(store.config.offline_store), DeltaOfflineStore)


def test_source_proto_round_trip() -> None:
    source = DeltaSource(
        name="s",
        path="s3://bucket/lake/features/activity",
        timestamp_field="ts",
        created_timestamp_column="created",
        field_mapping={"raw": "value"},
        version=7,
        storage_options={"AWS_REGION": "eu-west-1"},
        description="d",
        tags={"team": "risk"},
        owner="o@example.com",
    )
    restored = DataSource.from_proto(source.to_proto())
    assert isinstance(restored, DeltaSource)
    assert restored == source
    assert (restored.path, restored.version, restored.storage_options) == (
        source.path,
        7,
        {"AWS_REGION": "eu-west-1"},
    )
    assert restored != _source("s", "s3://bucket/lake/features/activity")


def test_column_types_for_inference(tmp_path: Path) -> None:
    table = pa.table(
        {
            "k": pa.array([1], pa.int64()),
            "s": ["x"],
            "f": [1.0],
            "l": pa.array([[1.0]], pa.list_(pa.float64())),
            "ts": _ts(T0),
        }
    )
    write_deltalake(tmp_path / "t", table)
    source = DeltaSource("t", str(tmp_path / "t"), "ts")
    types = dict(source.get_table_column_names_and_types(None))  # type: ignore[arg-type]
    assert types == {
        "k": "int64",
        "s": "string",
        "f": "double",
        "l": "list<item: double>",
        "ts": "timestamp[us, tz=UTC]",
    }
    to_value_type = source.source_datatype_to_feast_value_type()
    assert to_value_type(types["s"]) == ValueType.STRING
    assert to_value_type(types["l"]) == ValueType.DOUBLE_LIST


def test_relative_paths_resolve_env_then_config_then_repo(
    repo: tuple[FeatureStore, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    store, root = repo
    source = _source("x", "features/activity")
    monkeypatch.delenv(LAKEHOUSE_URI_ENV, raising=False)
    assert source.table_uri(store.config) == str(root / "lake" / "features" / "activity")
    monkeypatch.setenv(LAKEHOUSE_URI_ENV, str(tmp_path))
    assert source.table_uri(store.config) == str(tmp_path / "features" / "activity")
    monkeypatch.setenv(LAKEHOUSE_URI_ENV, "s3://bucket/lake/")
    assert source.table_uri(store.config) == "s3://bucket/lake/features/activity"
    assert _source("y", "gs://b/t").table_uri(store.config) == "gs://b/t"
    assert _source("z", str(tmp_path)).table_uri(store.config) == str(tmp_path)
    monkeypatch.delenv(LAKEHOUSE_URI_ENV)
    no_root = store.config.model_copy()
    no_root._offline_store = DeltaOfflineStoreConfig()
    assert source.table_uri(no_root) == str(root / "features" / "activity")


# --------------------------------------------------------------------------- semantics


def test_every_entity_row_in_input_order_with_nullable_ints(
    repo: tuple[FeatureStore, Path],
) -> None:
    store, root = repo
    entity = _entities(
        (2, T0 + DAY),  # tie on ts: created T0+1d wins -> 21, spend null
        (1, T0 + DAY),
        (3, T0),  # only row is 10 days old, ttl 2 days -> nulls
        (1, T0 + DAY),  # duplicate kept
        (9, T0),  # no data
        (1, T0 - DAY),  # before any row
    )
    job = store.get_historical_features(entity, ["activity:value", "activity:spend"])
    table = job.to_arrow()
    assert table.column("value").to_pylist() == [21, 11, None, 11, None, None]
    assert table.column("spend").to_pylist() == [None, 2.5, None, 2.5, None, None]
    assert table.schema.field("value").type == pa.int64()
    df = job.to_df()
    assert str(df["value"].dtype) == "Int64" and df["value"].isna().sum() == 3
    assert job.source_versions == {str(root / "lake" / "features" / "activity"): 0}
    assert job.metadata is not None and job.metadata.source_versions == job.source_versions


@pytest.mark.parametrize("kind", ["polars", "lazy", "arrow"])
def test_polars_and_arrow_entity_frames(repo: tuple[FeatureStore, Path], kind: str) -> None:
    store, _ = repo
    frame = pl.DataFrame(
        {"customer_id": [1, 2], "event_timestamp": [T0 + DAY, T0 + DAY]}
    ).with_columns(pl.col("event_timestamp").dt.convert_time_zone("Europe/Berlin"))
    entity = {"polars": frame, "lazy": frame.lazy(), "arrow": frame.to_arrow()}[kind]
    table = store.get_historical_features(entity, ["activity:value"]).to_arrow()  # type: ignore[arg-type]
    assert table.column("value").to_pylist() == [11, 21]
    assert table.schema.field("event_timestamp").type.tz == "UTC"


def test_join_key_map_from_feature_service(repo: tuple[FeatureStore, Path]) -> None:
    store, _ = repo
    entity = pd.DataFrame({"referrer_id": [2, 1], "event_timestamp": [T0, T0]})
    service = store.get_feature_service("referrals")
    table = store.get_historical_features(entity, service, full_feature_names=True).to_arrow()
    assert table.column_names == [
        "referrer_id",
        "event_timestamp",
        "referrer__value",
        "referrer__spend",
    ]
    assert table.column("referrer__value").to_pylist() == [21, 10]


def test_overwritten_rows_never_come_back(tmp_path: Path) -> None:
    """Overwrite leaves the old Parquet files on disk; only the snapshot must be read."""
    write_feature_store_yaml(tmp_path)
    path = tmp_path / "tbl"
    write_deltalake(path, activity_table())
    write_deltalake(path, activity_table(value_offset=100), mode="overwrite")
    assert len(list(path.glob("*.parquet"))) == 2  # the stale file is still there
    view = _view("current", _source("cur_src", str(path), created_timestamp_column="created"))
    store = FeatureStore(repo_path=str(tmp_path))
    store.apply([CUSTOMER, view])
    entity = _entities((1, T0 + DAY), (1, T0 + DAY))
    job = store.get_historical_features(entity, ["current:value"])
    assert job.to_arrow().column("value").to_pylist() == [111, 111]
    assert job.source_versions == {str(path): 1}
    pulled = DeltaOfflineStore.pull_all_from_table_or_query(
        store.config, view.batch_source, ["customer_id"], ["value"], "ts"
    ).to_arrow()
    assert sorted(pulled.column("value").to_pylist()) == [110, 111, 120, 121, 130]


def test_feast_file_source_returns_stale_rows_on_the_same_table(tmp_path: Path) -> None:
    """The trap this package exists for: Feast's dask store reads every file in the folder."""
    path = tmp_path / "tbl"
    write_deltalake(path, activity_table())
    # The snapshot now holds only (customer 1, T0, 110); the removed file has a later row.
    write_deltalake(path, activity_table(value_offset=100).slice(0, 1), mode="overwrite")
    (tmp_path / "feature_store.yaml").write_text(
        "project: trap\nprovider: local\nregistry: data/registry.db\n"
        "online_store:\n  type: sqlite\n  path: data/online.db\n"
        "offline_store:\n  type: file\nentity_key_serialization_version: 3\n"
    )
    source = FileSource(path=str(path), timestamp_field="ts", created_timestamp_column="created")
    view = FeatureView(
        name="v",
        entities=[CUSTOMER],
        ttl=2 * DAY,
        source=source,
        schema=[Field(name="value", dtype=Int64)],
    )
    store = FeatureStore(repo_path=str(tmp_path))
    store.apply([CUSTOMER, view])
    entity = _entities((1, T0 + DAY), (1, T0 + DAY))
    values = store.get_historical_features(entity, ["v:value"]).to_df()["value"]
    # The snapshot's answer is 110 for both rows; the dask store returns a row the Delta
    # log removed, and only once.
    assert values.tolist() == [11]


def test_pinned_version_and_vacuumed_snapshot(tmp_path: Path) -> None:
    write_feature_store_yaml(tmp_path)
    path = tmp_path / "tbl"
    write_deltalake(path, activity_table())
    write_deltalake(path, activity_table(value_offset=100), mode="overwrite")
    pinned = _view("pinned", _source("pinned_src", str(path), version=0))
    future = _view("future", _source("future_src", str(path), version=5))
    store = FeatureStore(repo_path=str(tmp_path))
    store.apply([CUSTOMER, pinned, future])
    entity = _entities((1, T0))
    job = store.get_historical_features(entity, ["pinned:value"])
    assert job.to_arrow().column("value").to_pylist() == [10]
    assert job.source_versions == {str(path): 0}
    with pytest.raises(DeltaSnapshotUnavailableError, match="version 5"):
        store.get_historical_features(entity, ["future:value"])

    DeltaTable(path).vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)
    with pytest.raises(DeltaSnapshotUnavailableError, match=r"pinned_src.*version 0.*vacuumed"):
        store.get_historical_features(entity, ["pinned:value"])
    # A job planned before the files vanished fails when it reads, just as clearly.
    with pytest.raises(DeltaSnapshotUnavailableError, match=r"tbl@v0 could not be read"):
        job.to_arrow()


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("entity", "error", "match"),
    [
        (pd.DataFrame({"event_timestamp": [T0]}), EntityFrameError, r"customer_id.*'activity'"),
        (pd.DataFrame({"customer_id": [1]}), EntityFrameError, "event timestamp"),
        (
            pd.DataFrame(
                {"customer_id": [1, 2], "event_timestamp": [datetime(2024, 5, 1), T0]},
                dtype=object,
            ).astype({"customer_id": int}),
            EntityFrameError,
            "mixes naive and time-zone-aware",
        ),
        (
            pd.DataFrame({"customer_id": ["1"], "event_timestamp": [T0]}),
            EntityFrameError,
            "Join key 'customer_id'",
        ),
        (
            pd.DataFrame({"customer_id": [1], "event_timestamp": [T0], "value": [0]}),
            EntityFrameError,
            r"\['value'\] collide with features of feature view 'activity'",
        ),
        ("SELECT * FROM entities", NotImplementedError, "SQL entity frames are not supported"),
    ],
    ids=["no-join-key", "no-timestamp", "mixed-tz", "key-type", "collision", "sql"],
)
def test_bad_entity_frames(
    repo: tuple[FeatureStore, Path], entity: Any, error: type[Exception], match: str
) -> None:
    store, _ = repo
    with pytest.raises(error, match=match):
        store.get_historical_features(entity, ["activity:value"])


def test_missing_table_and_missing_mapped_column(repo: tuple[FeatureStore, Path]) -> None:
    store, _ = repo
    entity = _entities((1, T0))
    with pytest.raises(DeltaTableNotFoundError, match=r"missing_src.*'no_table'.*does_not_exist"):
        store.get_historical_features(entity, ["no_table:value"])
    with pytest.raises(DeltaSchemaError, match=r"'bad_mapping'.*'value_v2' \(mapped to 'value'\)"):
        store.get_historical_features(entity, ["bad_mapping:value"])


def test_unknown_feature(repo: tuple[FeatureStore, Path]) -> None:
    store, _ = repo
    entity = _entities((1, T0))
    with pytest.raises(KeyError, match=r"nope.*activity"):  # Feast's own check
        store.get_historical_features(entity, ["activity:nope"])
    view = store.get_feature_view("activity")
    with pytest.raises(DeltaSchemaError, match=r"'activity' has no feature\(s\) \['nope'\]"):
        DeltaOfflineStore.get_historical_features(
            store.config, [view], ["activity:nope"], entity, store.registry, store.project
        )


def test_retrieval_without_entity_frame_is_refused(repo: tuple[FeatureStore, Path]) -> None:
    store, _ = repo
    with pytest.raises(NotImplementedError, match="without an entity frame"):
        store.get_historical_features(features=["activity:value"], start_date=T0, end_date=T0)


# --------------------------------------------------------------------------- pulls and writes


@pytest.mark.parametrize("reverse", [False, True], ids=["as-written", "reversed"])
def test_pull_latest_and_pull_all(
    repo: tuple[FeatureStore, Path], tmp_path: Path, reverse: bool
) -> None:
    store, _ = repo
    table = activity_table()
    if reverse:  # the created-timestamp tie-break must not depend on row order
        table = table.take(list(range(table.num_rows))[::-1])
    write_deltalake(tmp_path / "t", table)
    source = _source("t", str(tmp_path / "t"), created_timestamp_column="created")
    latest = DeltaOfflineStore.pull_latest_from_table_or_query(
        store.config, source, ["customer_id"], ["value"], "ts", "created", T0 - DAY, T0 + DAY
    ).to_arrow()
    rows = sorted(latest.to_pylist(), key=lambda r: r["customer_id"])
    assert [(r["customer_id"], r["value"]) for r in rows] == [(1, 11), (2, 21)]
    assert set(latest.column_names) == {"customer_id", "value", "ts", "created"}
    everything = DeltaOfflineStore.pull_all_from_table_or_query(
        store.config, source, [], [], "ts", None, T0, T0
    ).to_arrow()  # no keys, all columns, both range ends inclusive
    assert sorted(everything.column("value").to_pylist()) == [10, 20, 21]
    assert set(everything.column("__dummy_id").to_pylist()) == {""}
    assert everything.schema.field("plan").type == pa.string()


def test_offline_write_batch_appends(tmp_path: Path) -> None:
    write_feature_store_yaml(tmp_path)
    path = tmp_path / "tbl"
    write_deltalake(path, activity_table())
    view = _view("w", _source("w_src", str(path)))
    store = FeatureStore(repo_path=str(tmp_path))
    store.apply([CUSTOMER, view])
    extra = activity_table(value_offset=1000).slice(0, 1)
    store.write_to_offline_store("w", extra.to_pandas())
    assert DeltaTable(path).version() == 1
    assert 1010 in DeltaTable(path).to_pyarrow_table().column("value").to_pylist()
