"""``feast apply`` / ``materialize`` / ``materialize-incremental`` from Delta into SQLite.

Once through the real ``feast`` CLI (a subprocess in the repo directory, as a user would
run it) and once through the SDK with ``pull_latest_features`` on, which switches Feast's
local engine from ``pull_all_from_table_or_query`` to ``pull_latest_from_table_or_query``.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import write_deltalake
from feast import FeatureStore

from lakehouse.feast_delta.testing import write_feature_store_yaml

T0 = datetime(2024, 6, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
PROJECT_ROOT = Path(__file__).resolve().parents[1]
FEAST_CLI = Path(sys.executable).with_name("feast")

DEFINITIONS = """
from datetime import timedelta

from feast import Entity, FeatureView, Field
from feast.types import Float64, Int64, String
from feast.value_type import ValueType

from lakehouse.feast_delta import DeltaSource

customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.INT64)

activity = FeatureView(
    name="activity",
    entities=[customer],
    ttl=timedelta(days=7),
    source=DeltaSource(
        name="activity_source",
        path="features/activity",
        timestamp_field="event_ts",
        created_timestamp_column="created_ts",
        field_mapping={"sessions_raw": "sessions"},
    ),
    schema=[
        Field(name="sessions", dtype=Int64),
        Field(name="spend", dtype=Float64),
        Field(name="plan", dtype=String),
    ],
)
"""


def _rows(customers: list[int], ts: list[datetime], created: list[datetime], base: int) -> pa.Table:
    n = len(customers)
    stamp = pa.timestamp("us", tz="UTC")
    return pa.table(
        {
            "customer_id": pa.array(customers, pa.int64()),
            "event_ts": pa.array(ts, stamp),
            "created_ts": pa.array(created, stamp),
            "sessions_raw": pa.array([base + i for i in range(n)], pa.int64()),
            "spend": [float(base + i) / 2 for i in range(n)],
            "plan": [f"plan{base + i}" for i in range(n)],
        }
    )


def _make_repo(root: Path, extra: str = "") -> Path:
    write_feature_store_yaml(root, project="materialize_test", extra=extra)
    (root / "definitions.py").write_text(DEFINITIONS)
    table = root / "lake" / "features" / "activity"
    # Customer 1: two rows at the same time, the later-created one (sessions 101) wins;
    # customer 2: its latest row (sessions 103) wins over an older one.
    write_deltalake(
        table,
        _rows([1, 1, 2, 2], [T0, T0, T0 - HOUR, T0], [T0, T0 + HOUR, T0, T0], base=100),
    )
    return table


def _online(root: Path) -> dict[str, list[object]]:
    store = FeatureStore(repo_path=str(root))
    return store.get_online_features(
        ["activity:sessions", "activity:spend", "activity:plan"],
        [{"customer_id": 1}, {"customer_id": 2}, {"customer_id": 3}],
    ).to_dict()


def _feast(root: Path, *args: str) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])
        ),
        "SCOREHOUSE_LAKEHOUSE_URI": "lake",  # relative: resolved against the CLI's cwd
    }
    done = subprocess.run(
        [str(FEAST_CLI), *args], cwd=root, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"feast {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"


@pytest.mark.slow
def test_cli_apply_materialize_and_incremental(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = _make_repo(tmp_path)
    _feast(tmp_path, "apply")
    _feast(tmp_path, "materialize", (T0 - 2 * HOUR).isoformat(), (T0 + HOUR).isoformat())

    monkeypatch.setenv("SCOREHOUSE_LAKEHOUSE_URI", str(tmp_path / "lake"))
    online = _online(tmp_path)
    assert online["sessions"] == [101, 103, None]
    assert online["plan"] == ["plan101", "plan103", None]

    # New rows land; the incremental run picks up only what is newer than the last run.
    write_deltalake(
        table, _rows([2, 3], [T0 + 2 * HOUR] * 2, [T0 + 2 * HOUR] * 2, base=200), mode="append"
    )
    _feast(tmp_path, "materialize-incremental", (T0 + 3 * HOUR).isoformat())
    online = _online(tmp_path)
    assert online["sessions"] == [101, 200, 201]
    assert online["spend"] == [50.5, 100.0, 100.5]


def test_sdk_materialize_with_pull_latest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    table = _make_repo(tmp_path, extra="materialization:\n  pull_latest_features: true\n")
    monkeypatch.delenv("SCOREHOUSE_LAKEHOUSE_URI", raising=False)
    # No env var: relative source paths resolve against offline_store.lakehouse_uri.
    config = (tmp_path / "feature_store.yaml").read_text()
    (tmp_path / "feature_store.yaml").write_text(
        config.replace(
            "  type: lakehouse.feast_delta.DeltaOfflineStore\n",
            "  type: lakehouse.feast_delta.DeltaOfflineStore\n  lakehouse_uri: lake\n",
        )
    )
    spec = importlib.util.spec_from_file_location("delta_defs", tmp_path / "definitions.py")
    assert spec is not None and spec.loader is not None
    definitions = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(definitions)

    store = FeatureStore(repo_path=str(tmp_path))
    assert store.config.materialization_config.pull_latest_features
    store.apply([definitions.customer, definitions.activity])
    store.materialize(start_date=T0 - 2 * HOUR, end_date=T0 + HOUR)
    assert _online(tmp_path)["sessions"] == [101, 103, None]

    write_deltalake(table, _rows([1], [T0 + 2 * HOUR], [T0 + 2 * HOUR], base=300), mode="append")
    store.materialize_incremental(end_date=T0 + 3 * HOUR)
    online = _online(tmp_path)
    assert online["sessions"] == [300, 103, None]
    assert online["plan"] == ["plan300", "plan103", None]
