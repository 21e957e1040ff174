"""Point-in-time join checked against a brute-force reference on randomised data.

The data has timestamp ties (broken by created timestamps, some null), entity timestamps
exactly on TTL edges, entities without feature rows, duplicate entity rows, null feature
values, a compound-key view, a view with naive (``timestamp_ntz``) feature timestamps, and
entity timestamps in several time zones. Convention checked here (Feast's, as in its
BigQuery/Snowflake/Ibis/dask stores): a feature row at ``ts`` qualifies for an entity row
at ``t`` when ``t - ttl <= ts <= t`` -- both edges included.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from deltalake import write_deltalake

from lakehouse.feast_delta import FeatureFrame, point_in_time_join
from lakehouse.feast_delta.testing import (
    as_utc,
    reference_point_in_time_join,
    write_feature_store_yaml,
)

BASE = datetime(2024, 3, 1, tzinfo=UTC)
STEP = timedelta(hours=1)
N_KEYS = 12
PRODUCTS = ("a", "b")
SEEDS = (0, 1, 2)
TIME_ZONES = (None, "UTC", "America/New_York", "Asia/Kolkata")


@dataclass(frozen=True)
class View:
    """One randomised feature view: its rows and how to join them."""

    name: str
    keys: tuple[str, ...]
    features: tuple[str, ...]
    ttl: timedelta | None
    created: bool
    naive_ts: bool
    rows: list[dict[str, Any]]

    def arrow(self) -> pa.Table:
        ts_type = pa.timestamp("us") if self.naive_ts else pa.timestamp("us", tz="UTC")
        types = {
            "customer_id": pa.int64(),
            "product": pa.string(),
            "ts": ts_type,
            "created": pa.timestamp("us", tz="UTC"),
            "value": pa.int64(),
            "score": pa.float64(),
            "tier": pa.string(),
            "qty": pa.int64(),
        }
        columns = [*self.keys, "ts", *(["created"] if self.created else []), *self.features]
        return pa.table({c: pa.array([r[c] for r in self.rows], types[c]) for c in columns})

    def expected(self, entity_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return reference_point_in_time_join(
            entity_rows,
            self.rows,
            join_keys=self.keys,
            features=self.features,
            timestamp_column="ts",
            created_timestamp_column="created" if self.created else None,
            ttl=self.ttl,
        )


def _feature_rows(
    rng: random.Random, keys: tuple[str, ...], features: tuple[str, ...], created: bool, naive: bool
) -> list[dict[str, Any]]:
    rows = []
    used = set()
    for _ in range(150):
        key = (rng.randrange(N_KEYS), rng.choice(PRODUCTS))
        hour = rng.randrange(48)
        group = (key[: len(keys)], hour)
        if group in used:
            continue  # a second group would make (key, ts) ties ambiguous
        used.add(group)
        ts = BASE + hour * STEP
        # Several rows per (key, ts) only when a created timestamp can rank them; at most
        # one of them has a null created timestamp.
        ranks = rng.sample(range(600), rng.choice((1, 1, 2, 3)) if created else 1)
        for i, rank in enumerate(ranks):
            rows.append(
                {
                    "customer_id": key[0],
                    "product": key[1],
                    "ts": ts.replace(tzinfo=None) if naive else ts,
                    "created": None if i == 0 and rng.random() < 0.2 else BASE + rank * STEP,
                    "value": None if rng.random() < 0.1 else rng.randrange(-1000, 1000),
                    "score": rng.random(),
                    "tier": rng.choice(("gold", "silver", None)),
                    "qty": rng.randrange(10),
                }
            )
    return [{k: v for k, v in r.items() if k in {*keys, "ts", "created", *features}} for r in rows]


def make_views(seed: int) -> list[View]:
    rng = random.Random(seed)
    specs = [
        ("activity", ("customer_id",), ("value", "score"), timedelta(hours=6), True, False),
        ("profile", ("customer_id",), ("tier",), None, False, True),
        ("basket", ("customer_id", "product"), ("qty",), timedelta(hours=12), True, False),
    ]
    return [
        View(
            name, keys, feats, ttl, created, naive, _feature_rows(rng, keys, feats, created, naive)
        )
        for name, keys, feats, ttl, created, naive in specs
    ]


def make_entity_rows(seed: int) -> list[dict[str, Any]]:
    """Entity rows in UTC: on-grid times hit TTL edges exactly; keys >= N_KEYS have no data."""
    rng = random.Random(1000 + seed)
    rows = []
    for i in range(250):
        offset = timedelta(minutes=rng.choice((0, 0, 1, 59, 30)))
        rows.append(
            {
                "customer_id": rng.randrange(N_KEYS + 3),
                "product": rng.choice(PRODUCTS),
                "event_timestamp": BASE + rng.randrange(-2, 56) * STEP + offset,
                "label": i,
            }
        )
    rows += [dict(r) for r in rng.sample(rows, 30)]  # duplicate entity rows
    rng.shuffle(rows)
    return rows


def entity_frame(rows: list[dict[str, Any]], tz: str | None) -> pd.DataFrame:
    """Pandas entity frame with timestamps naive (= UTC) or expressed in ``tz``."""
    frame = pd.DataFrame(rows)
    stamps = pd.to_datetime(frame["event_timestamp"], utc=True)
    frame["event_timestamp"] = (
        stamps.dt.tz_localize(None) if tz is None else stamps.dt.tz_convert(tz)
    )
    return frame


def expected_rows(
    views: list[View], entity_rows: list[dict[str, Any]], prefix: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    expected = [dict(r, event_timestamp=as_utc(r["event_timestamp"])) for r in entity_rows]
    for view in views:
        for row, values in zip(expected, view.expected(entity_rows), strict=True):
            row.update({(prefix or {}).get(view.name, "") + k: v for k, v in values.items()})
    return expected


def assert_rows_equal(actual: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    assert len(actual) == len(expected)
    for i, (got, want) in enumerate(zip(actual, expected, strict=True)):
        got = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in got.items()}
        want_cmp = {k: want[k] for k in got}
        assert got == want_cmp, f"row {i}: {got} != {want_cmp}"


# --------------------------------------------------------------------------- pure polars


def _frames(views: list[View]) -> list[FeatureFrame]:
    return [
        FeatureFrame(
            name=v.name,
            frame=pl.from_arrow(v.arrow()).lazy(),  # type: ignore[union-attr]
            join_keys=v.keys,
            timestamp_column="ts",
            feature_columns=v.features,
            created_timestamp_column="created" if v.created else None,
            ttl=v.ttl,
            row_count_hint=len(v.rows),
        )
        for v in views
    ]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("tz", TIME_ZONES)
def test_polars_join_matches_reference(seed: int, tz: str | None) -> None:
    views, rows = make_views(seed), make_entity_rows(seed)
    entity = pl.from_pandas(entity_frame(rows, tz))
    expected = expected_rows(views, rows)
    # One pass, and several passes over hash partitions of the keys (forced by a low limit).
    for max_rows in (10**9, 37):
        result = point_in_time_join(entity, _frames(views), max_rows_per_pass=max_rows)
        assert result.columns == [*entity.columns, "value", "score", "tier", "qty"]
        assert result.schema["event_timestamp"] == pl.Datetime("ns", "UTC")
        assert result.schema["value"] == pl.Int64
        assert_rows_equal(result.to_dicts(), expected)


def test_reference_data_exercises_the_edge_cases() -> None:
    """Guard against the generator drifting away from the cases it is meant to cover."""
    views, rows = make_views(0), make_entity_rows(0)
    activity = views[0]
    ties = {(r["customer_id"], r["ts"]) for r in activity.rows}
    assert len(ties) < len(activity.rows), "no timestamp ties"
    assert any(r["created"] is None for r in activity.rows)
    edge_hits = [
        e
        for e in rows
        for r in activity.rows
        if r["customer_id"] == e["customer_id"] and e["event_timestamp"] - activity.ttl == r["ts"]
    ]
    assert edge_hits, "no entity row exactly one TTL after a feature row"
    assert any(e["customer_id"] >= N_KEYS for e in rows)
    assert len({tuple(sorted(r.items())) for r in rows}) < len(rows)


def test_ttl_edges_and_ties() -> None:
    """At ``t - ttl`` included, just before it excluded; at ``t`` included, after excluded."""
    t = datetime(2024, 1, 10, 12, tzinfo=UTC)
    ttl = timedelta(hours=2)
    us = timedelta(microseconds=1)
    features = pl.DataFrame(
        {
            "k": [1, 2, 3, 3, 4, 4, 4, 5],
            "ts": [t - ttl, t - ttl - us, t, t + us, t, t, t, t - us],
            "created": [t, t, t, t, t - us, t + us, None, t],
            "v": [1, 2, 3, 4, 5, 6, 7, 8],
        }
    )
    entity = pl.DataFrame({"k": [1, 2, 3, 4, 5, 6], "event_timestamp": [t] * 6})
    frame = FeatureFrame("edges", features.lazy(), ["k"], "ts", ["v"], "created", ttl)
    result = point_in_time_join(entity, [frame])
    assert result["v"].to_list() == [1, None, 3, 6, 8, None]


def test_zero_ttl_means_unlimited_and_entityless_views() -> None:
    old = datetime(2000, 1, 1, tzinfo=UTC)
    features = pl.DataFrame({"ts": [old, old + STEP], "v": [1, 2]})
    entity = pl.DataFrame({"event_timestamp": [datetime(2024, 1, 1), old]})
    frame = FeatureFrame("global", features.lazy(), [], "ts", ["v"], None, timedelta(0))
    assert point_in_time_join(entity, [frame])["v"].to_list() == [2, 1]


# --------------------------------------------------------------------------- through Feast


@pytest.fixture(scope="module")
def feast_repo(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A Feast repo over Delta tables holding ``make_views(0)``, with an ODFV applied."""
    from feast import Entity, FeatureStore, FeatureView, Field, RequestSource
    from feast.on_demand_feature_view import on_demand_feature_view
    from feast.types import Float64, Int64, String
    from feast.value_type import ValueType

    from lakehouse.feast_delta import DeltaSource

    repo = tmp_path_factory.mktemp("pit_repo")
    write_feature_store_yaml(repo, offline_options={"lakehouse_uri": "lake"})
    views = make_views(0)
    customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.INT64)
    product = Entity(name="product", join_keys=["product"], value_type=ValueType.STRING)
    dtypes = {"value": Int64, "score": Float64, "tier": String, "qty": Int64}
    feature_views = []
    for view in views:
        table = view.arrow()
        # Exercise field_mapping: the table calls the feature "<name>_raw".
        mapping = {f"{f}_raw": f for f in view.features}
        write_deltalake(
            repo / "lake" / "features" / view.name,
            table.rename_columns(
                [f"{c}_raw" if c in view.features else c for c in table.column_names]
            ),
        )
        source = DeltaSource(
            name=f"{view.name}_source",
            path=f"features/{view.name}",
            timestamp_field="ts",
            created_timestamp_column="created" if view.created else None,
            field_mapping=mapping,
        )
        feature_views.append(
            FeatureView(
                name=view.name,
                entities=[customer, product] if len(view.keys) == 2 else [customer],
                ttl=view.ttl or timedelta(0),
                source=source,
                schema=[Field(name=f, dtype=dtypes[f]) for f in view.features],
            )
        )
    bonus = RequestSource(name="bonus", schema=[Field(name="bonus", dtype=Float64)])

    @on_demand_feature_view(
        sources=[feature_views[0], bonus],
        schema=[Field(name="adjusted", dtype=Float64)],
        mode="pandas",
    )
    def adjusted(inputs: pd.DataFrame) -> pd.DataFrame:
        score = inputs["activity__score"] if "activity__score" in inputs else inputs["score"]
        return pd.DataFrame({"adjusted": score + inputs["bonus"]})

    store = FeatureStore(repo_path=str(repo))
    store.apply([customer, product, *feature_views, adjusted])
    return store, views


FEATURES = ["activity:value", "activity:score", "profile:tier", "basket:qty"]


@pytest.mark.parametrize(("seed_tz", "kind"), [(None, "pandas"), ("Asia/Kolkata", "polars")])
def test_feature_store_matches_reference(feast_repo: Any, seed_tz: str | None, kind: str) -> None:
    store, views = feast_repo
    rows = make_entity_rows(0)
    frame = entity_frame(rows, seed_tz)
    entity = frame if kind == "pandas" else pl.from_pandas(frame)
    job = store.get_historical_features(entity_df=entity, features=FEATURES)
    table = job.to_arrow()
    assert table.schema.field("value").type == pa.int64()
    assert table.column("label").to_pylist() == [r["label"] for r in rows]  # input order
    assert_rows_equal(table.to_pylist(), expected_rows(views, rows))
    assert len(job.source_versions) == 3 and set(job.source_versions.values()) == {0}
    assert str(job.to_df()["value"].dtype) == "Int64"


def test_feature_store_full_names_and_on_demand_view(feast_repo: Any) -> None:
    store, views = feast_repo
    rows = make_entity_rows(1)
    frame = entity_frame(rows, "America/New_York").assign(bonus=0.5)
    job = store.get_historical_features(
        entity_df=frame, features=[*FEATURES, "adjusted:adjusted"], full_feature_names=True
    )
    result = job.to_df()
    prefix = {v.name: f"{v.name}__" for v in views}
    expected = expected_rows(views, rows, prefix)
    assert list(result.columns) == [
        *frame.columns,
        "activity__value",
        "activity__score",
        "profile__tier",
        "basket__qty",
        "adjusted__adjusted",
    ]
    records = result.drop(columns=["bonus", "adjusted__adjusted"]).to_dict("records")
    records = [{k: (None if v is pd.NA else v) for k, v in r.items()} for r in records]
    for r in records:
        r["event_timestamp"] = r["event_timestamp"].to_pydatetime()
    assert_rows_equal(records, expected)
    for got, want in zip(result["adjusted__adjusted"], expected, strict=True):
        score = want["activity__score"]
        assert (math.isnan(got) and score is None) or got == pytest.approx(score + 0.5)


def test_an_empty_entity_frame_gives_typed_empty_columns() -> None:
    """No entity rows, a view with a TTL: zero rows with the columns a full join would have
    (Feast's own stores return 0 rows too)."""
    t = datetime(2024, 1, 10, tzinfo=UTC)
    features = pl.DataFrame({"k": [1], "ts": [t], "v": [1.5], "tier": ["a"]})
    frame = FeatureFrame(
        "ttl", features.lazy(), ["k"], "ts", ["v", "tier"], None, timedelta(days=1)
    )
    full = point_in_time_join(pl.DataFrame({"k": [1], "event_timestamp": [t]}), [frame])
    empty = point_in_time_join(full.head(0).select("k", "event_timestamp"), [frame])
    assert empty.height == 0 and empty.schema == full.schema


def test_feature_store_with_an_empty_entity_frame(feast_repo: Any) -> None:
    store, _ = feast_repo
    frame = entity_frame(make_entity_rows(0), None).head(0)
    table = store.get_historical_features(entity_df=frame, features=FEATURES).to_arrow()
    assert table.num_rows == 0 and {"value", "score", "tier", "qty"} <= set(table.column_names)
