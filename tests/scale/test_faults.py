"""Faults on the scale profile: a service down at start, wrong object-store credentials, the
object store restarted in the middle of a write, two promotion gates racing. Each fails cleanly
with a message naming the service and its setting, or completes; nothing is half-written and
every table stays readable at its previous version."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import boto3
import polars as pl
import pytest
from dagster import DagsterInstance

from lakehouse.catalog import Catalog, TableSpec
from lakehouse.storage import Lakehouse
from models.lifecycle.gate import read_state, run_gate
from models.lifecycle.policy import PromotionPolicy
from models.lifecycle.registry import CHAMPION, ModelRegistry, RunContext
from models.training.train import train
from models.usecase import load_use_cases
from orchestration.cli import main
from orchestration.locks import promotion_gate
from orchestration.profiles import Profile, ServiceUnavailableError, load_profile
from tests.models.conftest import FAST
from tests.models.synthetic import CHURN, synthetic_training_set
from tests.s3 import S3Emulator, free_port

pytestmark = pytest.mark.scale

CLOSED = f"127.0.0.1:{free_port()}"  # nothing listens there


def _objects(profile: Profile) -> list[str]:
    """Every object under this test's lakehouse prefix (with the services' credentials)."""
    options = {k.upper(): v for k, v in (profile.storage_options() or {}).items()}
    bucket, _, prefix = profile.settings["SCOREHOUSE_LAKEHOUSE_URI"][5:].partition("/")
    client = boto3.client(
        "s3",
        endpoint_url=options.get("AWS_ENDPOINT_URL"),
        region_name=options.get("AWS_REGION", "us-east-1"),
        aws_access_key_id=options.get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=options.get("AWS_SECRET_ACCESS_KEY"),
    )
    listed = client.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for o in listed.get("Contents", [])]


@pytest.mark.parametrize(
    ("service", "settings", "named"),
    [
        (
            "postgres",
            {
                "SCOREHOUSE_DAGSTER_POSTGRES_URL": f"postgresql+psycopg2://x:y@{CLOSED}/dagster",
                "MLFLOW_TRACKING_URI": f"postgresql+psycopg2://x:y@{CLOSED}/mlflow",
                "SCOREHOUSE_FEAST_REGISTRY": f"postgresql+psycopg2://x:y@{CLOSED}/feast",
            },
            ["PostgreSQL", "SCOREHOUSE_DAGSTER_POSTGRES_URL", "x:***@"],
        ),
        (
            "redis",
            {"SCOREHOUSE_REDIS_URL": f"redis://{CLOSED}/0"},
            ["Redis", "SCOREHOUSE_REDIS_URL"],
        ),
        (
            "s3",
            {"AWS_ENDPOINT_URL": f"http://{CLOSED}"},
            ["object store", "AWS_ENDPOINT_URL", "SCOREHOUSE_STORAGE_OPTIONS"],
        ),
    ],
)
def test_a_service_down_at_start_is_named_and_nothing_is_written(
    service: str,
    settings: dict[str, str],
    named: list[str],
    scale_env: Profile,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for key, value in settings.items():
        if key == "AWS_ENDPOINT_URL":
            options = {**(scale_env.storage_options() or {}), key: value}
            monkeypatch.setenv("SCOREHOUSE_STORAGE_OPTIONS", json.dumps(options))
        monkeypatch.setenv(key, value)
    assert main(["run", "churn", "daily_pipeline", "--date", "2025-01-05"]) == 1
    error = capsys.readouterr().err
    for word in named:
        assert word in error, error
    assert "nothing was written" in error and "y@" not in error  # no password in messages
    healthy = load_profile()
    if service != "s3":
        assert _objects(healthy) == []  # no table, no file
    if service != "postgres":
        assert DagsterInstance.get().get_runs() == []  # no run started


def test_wrong_object_store_credentials_are_refused_clearly(
    tmp_path: Path, scale_env: Profile, monkeypatch: pytest.MonkeyPatch
) -> None:
    with S3Emulator(tmp_path / "s3", auth=True) as store:
        bucket = store.create_bucket("guarded")
        wrong = store.storage_options(AWS_SECRET_ACCESS_KEY="not-the-secret")
        profile = load_profile(
            {
                **scale_env.settings,
                "SCOREHOUSE_LAKEHOUSE_URI": f"s3://{bucket}/lake",
                "SCOREHOUSE_STORAGE_OPTIONS": json.dumps(wrong),
            }
        )
        with pytest.raises(ServiceUnavailableError, match="refused our credentials") as refused:
            profile.check_services()
        assert "SCOREHOUSE_STORAGE_OPTIONS" in str(refused.value)
        assert "not-the-secret" not in str(refused.value)
        # The lakehouse itself refuses too, and nothing reaches the bucket.
        lake = Lakehouse(f"s3://{bucket}/lake", catalog=_catalog(), storage_options=wrong)
        with pytest.raises(Exception, match=r"(?i)forbidden|denied|signature|credential|403"):
            lake.append("test.rows", _rows(0, 10))
        right = Lakehouse(
            f"s3://{bucket}/lake", catalog=_catalog(), storage_options=store.storage_options()
        )
        assert not right.exists("test.rows")


def _catalog() -> Catalog:
    schema = {"id": pl.Int64(), "value": pl.Float64()}
    return Catalog([TableSpec(name="test.rows", schema=schema, description="rows of a fault test")])


def _rows(start: int, count: int) -> pl.DataFrame:
    ids = list(range(start, start + count))
    return pl.DataFrame({"id": ids, "value": [i / 7 for i in ids]})


def test_the_object_store_restarted_mid_write_fails_cleanly_or_retries(tmp_path: Path) -> None:
    with S3Emulator(tmp_path / "s3", durable=True) as store:
        bucket = store.create_bucket("durable")
        lake = Lakehouse(
            f"s3://{bucket}/lake", catalog=_catalog(), storage_options=store.storage_options()
        )
        lake.append("test.rows", _rows(0, 1000))
        before = lake.read("test.rows").sort("id")
        restarter = threading.Thread(target=lambda: (time.sleep(0.3), store.restart()))
        failure: Exception | None = None
        try:
            with lake.staged_append("test.rows") as staged:
                for start in range(1000, 6000, 1000):
                    staged.write(_rows(start, 1000))
                restarter.start()  # the store goes away as the commit starts
                time.sleep(0.4)
        except Exception as exc:  # the write may fail: then it must have failed cleanly
            failure = exc
        restarter.join()
        after = Lakehouse(
            f"s3://{bucket}/lake", catalog=_catalog(), storage_options=store.storage_options()
        )
        assert after.read("test.rows", version=0).sort("id").equals(before)  # previous version
        rows = after.read("test.rows")
        assert rows["id"].n_unique() == rows.height  # nothing twice
        if failure is None:  # the client's retries outlasted the restart
            assert rows.height == 6000 and after.version("test.rows") == 1
        else:
            assert rows.height == 1000 and after.version("test.rows") == 0
            after.append("test.rows", _rows(1000, 5000))  # and the retry succeeds
            assert after.read("test.rows").height == 6000


def test_two_promotion_gates_racing_promote_once(scale_env: Profile) -> None:
    data = synthetic_training_set(customers=200, days=120, seed=0)
    lake = load_use_cases().lakehouse()
    lake.append(CHURN.tables.training_set, data.training_set)
    registry = ModelRegistry(CHURN.model_name)
    assert registry.uri.startswith("postgresql")
    context = RunContext(0, "churn_v1", {}, "run", use_case="churn")
    version = registry.log_training_run(
        train(data.training_set, CHURN.design, FAST), CHURN.encoding, context
    ).version
    policy = PromotionPolicy(roc_auc_margin=0.01)
    barrier, decisions, errors = threading.Barrier(2), [], []

    def gate() -> None:
        try:
            mine = ModelRegistry(CHURN.model_name)
            seen = read_state(mine)  # both read the same state, then race for the lock
            barrier.wait()
            lock = lambda: promotion_gate(mine.uri, mine.model_name)  # noqa: E731
            decisions.extend(run_gate(mine, lake, CHURN, policy, lock=lock, seen=seen).decisions)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=gate) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(d.decision for d in decisions) == ["no-op", "promote"]
    assert str(registry.alias(CHAMPION).version) == str(version)
    recorded = lake.read(CHURN.tables.decisions).sort("decided_at")
    assert recorded["decision"].to_list() == ["promote", "no-op"]
