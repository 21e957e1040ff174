"""The Feast feature repo on our Delta offline store, end to end on a tiny simulated world:
the churn training set against a brute-force point-in-time join, online materialization, the
plain ``feast`` CLI from ``feature_repo/``, and an HTTP lookup from Feast's own feature server
(``FeatureStore.serve``; ``scorehouse serve`` is the project's scoring service instead)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest

from feature_repo.config import REPO_PATH
from lakehouse.storage import Lakehouse
from models.usecase import project_lakehouse
from orchestration.features.feast_assets import feast_online_store, feast_registry, training_set
from orchestration.resources import FeatureStoreResource
from orchestration.settings import WORLD
from tests.world import churn, churn_feature_assets, ingest_assets, run_days

DAYS = 70
BIN = Path(sys.executable).parent
CHURN = churn()
FEATURE_TABLES = CHURN.tables.feature_tables
TRAINING_SET = CHURN.tables.training_set


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("feast-world")
    home = root / "home"
    os.environ["SCOREHOUSE_HOME"] = str(home)  # module scope: restored below
    try:
        assets = [
            *ingest_assets(),
            *churn_feature_assets(),
            feast_registry([CHURN]),
            feast_online_store(CHURN),
            training_set(CHURN),
        ]
        result = run_days(
            root,
            DAYS,
            customers=70,
            seed=5,
            assets=assets,
            extra_resources={
                "feature_store": FeatureStoreResource(lakehouse_uri=str(root / "lake"))
            },
        )
        assert result.success
    finally:
        os.environ.pop("SCOREHOUSE_HOME", None)
    return root


@pytest.fixture
def home(world: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SCOREHOUSE_HOME", str(world / "home"))
    return world / "home"


def _features(lake: Lakehouse) -> pl.DataFrame:
    tables = [
        lake.read(name).drop("event_timestamp", "created_timestamp") for name in FEATURE_TABLES
    ]
    joined = tables[0]
    for other in tables[1:]:
        joined = joined.join(other, on=["customer_id", "feature_date"], how="full", coalesce=True)
    return joined


def test_training_set_equals_a_brute_force_point_in_time_join(world: Path, home: Path) -> None:
    lake = project_lakehouse(world / "lake")
    train = lake.read(TRAINING_SET)
    assert train.height > 0 and train.schema == CHURN.table_spec(TRAINING_SET).polars_schema
    labels = lake.read("labels.churn")
    features = _features(lake)
    # TTL 3 days: the row of the latest feature_date in [as_of - 3, as_of - 1].
    for row in train.sample(40, seed=2).iter_rows(named=True):
        candidates = features.filter(
            (pl.col("customer_id") == row["customer_id"])
            & pl.col("feature_date").is_between(
                row["as_of_date"] - timedelta(days=3), row["as_of_date"] - timedelta(days=1)
            )
        ).sort("feature_date")
        label = labels.filter(
            (pl.col("customer_id") == row["customer_id"])
            & (pl.col("as_of_date") == row["as_of_date"])
        )
        assert row["churned_30d"] == label["churned_30d"][0]
        expected = candidates.tail(1).to_dicts()[0] if candidates.height else {}
        for column in (
            "sessions_30d_sum",
            "failed_payments_90d",
            "plan",
            "tenure_days",
            "last_csat_90d",
        ):
            assert row[column] == expected.get(column), (
                row["customer_id"],
                row["as_of_date"],
                column,
            )
        attempts = expected.get("payment_attempts_90d")
        if attempts:
            rate = expected["failed_payments_90d"] / attempts
            assert row["failed_payment_rate_90d"] == pytest.approx(rate)
    # Every label row of the selected as-of dates came back, once.
    chosen = labels.filter(pl.col("as_of_date").is_in(train["as_of_date"].unique().implode()))
    assert train.height == chosen.height
    assert {r.name for r in CHURN.features.ratios} <= set(train.columns)


def test_training_set_commit_records_versions_and_service(world: Path, home: Path) -> None:
    commit = project_lakehouse(world / "lake").history(TRAINING_SET)[0]
    assert commit["scorehouse.feature_service"] == "churn_v1"
    versions = commit["scorehouse.source_versions"]
    assert set(versions) == {*FEATURE_TABLES, "labels.churn"}
    assert commit["scorehouse.rows"] > 0


def test_a_retrain_for_a_day_learns_only_the_labels_matured_by_it(world: Path, home: Path) -> None:
    """``matured_by``: the as-of dates of labels written by partitions up to that day (the
    partition P writes as-of P − 29), whatever was ingested after it."""
    from lakehouse.features.training_set import build_training_set, default_first_as_of

    lake = project_lakehouse(world / "lake")
    store = FeatureStoreResource(lakehouse_uri=str(world / "lake")).get()
    definition = CHURN.label.definition
    day = WORLD.start_date + timedelta(days=DAYS - 8)

    def built(matured_by: date | None, window_days: int | None = None) -> pl.DataFrame:
        return build_training_set(
            lake,
            store,
            labels=definition,
            spec=CHURN.table_spec(TRAINING_SET),
            feature_service=CHURN.features.service,
            first_as_of=default_first_as_of(WORLD.start_date, 1),
            every_days=1,
            matured_by=matured_by,
            window_days=window_days,
        ).frame

    everything, bounded = built(None), built(day)
    last = day - timedelta(days=definition.maturity_days - 1)
    assert bounded["as_of_date"].max() == last < everything["as_of_date"].max()
    assert bounded.height == everything.filter(pl.col("as_of_date") <= last).height
    with pytest.raises(ValueError, match=r"no matured labels .* matured by"):
        built(WORLD.start_date)
    # A recent window: the newest 3 days of what had matured by the day, nothing older.
    recent = built(day, window_days=3)
    assert sorted(recent["as_of_date"].unique()) == [last - timedelta(days=n) for n in (2, 1, 0)]
    assert recent.height == bounded.filter(pl.col("as_of_date") > last - timedelta(days=3)).height


def _latest_rows(lake: Lakehouse, customers: list[str]) -> pl.DataFrame:
    last = WORLD.start_date + timedelta(days=DAYS - 1)
    return _features(lake).filter(
        (pl.col("feature_date") == last) & pl.col("customer_id").is_in(customers)
    )


def test_online_store_serves_the_latest_day(world: Path, home: Path) -> None:
    from feature_repo.config import feature_store

    lake = project_lakehouse(world / "lake")
    customers = _latest_rows(lake, lake.read("silver.customers")["customer_id"].to_list())
    ids = customers["customer_id"].head(5).to_list()
    online = (
        feature_store(str(world / "lake"))
        .get_online_features(
            features=["customer_activity:sessions_7d_sum", "customer_account:plan"],
            entity_rows=[{"customer_id": cid} for cid in ids],
        )
        .to_dict()
    )
    expected = customers.filter(pl.col("customer_id").is_in(ids)).sort("customer_id")
    got = pl.DataFrame(online).sort("customer_id")
    assert got["sessions_7d_sum"].to_list() == expected["sessions_7d_sum"].to_list()
    assert got["plan"].to_list() == expected["plan"].to_list()


def test_a_view_left_materializing_by_a_killed_run_keeps_serving(world: Path, home: Path) -> None:
    """A ``materialize`` killed mid-way leaves the view MATERIALIZING in the registry; the
    online store keeps serving its last values, and the next materialization ends the state."""
    from feast.feature_view import FeatureViewState

    from feature_repo.config import feature_store
    from orchestration.features.feast_assets import materialize_window

    lake = project_lakehouse(world / "lake")
    customers = _latest_rows(lake, lake.read("silver.customers")["customer_id"].to_list())
    ids = customers["customer_id"].head(5).to_list()
    store = feature_store(str(world / "lake"))
    view = store.get_feature_view("customer_account")
    view.state = FeatureViewState.MATERIALIZING
    store.registry.apply_feature_view(view, store.project, commit=True)

    online = (
        feature_store(str(world / "lake"))
        .get_online_features(
            features=["customer_account:plan"], entity_rows=[{"customer_id": c} for c in ids]
        )
        .to_dict()
    )
    expected = customers.filter(pl.col("customer_id").is_in(ids)).sort("customer_id")
    assert pl.DataFrame(online).sort("customer_id")["plan"].to_list() == expected["plan"].to_list()

    last = WORLD.start_date + timedelta(days=DAYS - 1)
    start, end = materialize_window([last])
    store = feature_store(str(world / "lake"))
    store.materialize(start_date=start, end_date=end, feature_views=["customer_account"])
    state = feature_store(str(world / "lake")).get_feature_view("customer_account").state
    assert state == FeatureViewState.AVAILABLE_ONLINE


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_http_lookup_through_feast_feature_server(world: Path, home: Path) -> None:
    lake = project_lakehouse(world / "lake")
    expected = _latest_rows(lake, lake.read("silver.customers")["customer_id"].to_list()).head(2)
    port = _free_port()
    serve = (
        "from feature_repo.config import feature_store; "
        f"feature_store().serve(host='127.0.0.1', port={port}, type_='http', no_access_log=True)"
    )
    server = subprocess.Popen(
        [sys.executable, "-c", serve],
        env={**os.environ, "SCOREHOUSE_HOME": str(home)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        body = json.dumps(
            {
                "feature_service": "churn_v1",
                "entities": {"customer_id": expected["customer_id"].to_list()},
            }
        ).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/get-online-features",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    payload = json.load(response)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.5)
    finally:
        server.terminate()
        server.wait(timeout=30)
    names = payload["metadata"]["feature_names"]
    values = {
        name: result["values"] for name, result in zip(names, payload["results"], strict=True)
    }
    assert values["customer_id"] == expected["customer_id"].to_list()
    assert values["sessions_30d_sum"] == expected["sessions_30d_sum"].to_list()
    assert values["plan"] == expected["plan"].to_list()


@pytest.mark.slow
def test_plain_feast_cli_from_the_repo_folder(world: Path, tmp_path: Path) -> None:
    """`feast apply` / `materialize` / `materialize-incremental` with the default-home layout."""
    checkout = tmp_path / "checkout"
    repo = checkout / "feature_repo"
    shutil.copytree(REPO_PATH, repo, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(world / "lake", checkout / ".scorehouse" / "lakehouse")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCOREHOUSE_")}

    def feast(*args: str) -> str:
        done = subprocess.run(
            [str(BIN / "feast"), *args],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    feast("apply")  # its summary depends on the online store's plan(); ask the registry
    assert "churn_v1" in feast("feature-services", "list")
    last = WORLD.start_date + timedelta(days=DAYS)
    feast("materialize", (last - timedelta(days=3)).isoformat(), f"{last.isoformat()}T00:01:00")
    feast("materialize-incremental", f"{last.isoformat()}T00:02:00")
    assert "customer_activity" in feast("feature-views", "list")
    assert (checkout / ".scorehouse" / "feast" / "online_rows.db").stat().st_size > 0
