"""The direct Redis writer (``feature_repo/online.py``) against Feast's own materialization
into SQLite: every feature view (doubles with nulls, ints, strings, string and double lists,
timestamps) read back through the unmodified Feast SDK equals what SQLite serves; an older
window is skipped as Feast skips it; the registry records the materialization."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import polars as pl
import pytest

from benchmarks.bench_scoring import DAY, synthetic_features
from feature_repo.config import apply, feature_store
from feature_repo.online import materialize
from models.usecase import load_use_cases

pytestmark = pytest.mark.scale
CUSTOMERS = 3_000
ONLINE_DB = 4


def _predictions(use_case, ids: list[str], stamp: datetime) -> pl.DataFrame:
    rng = np.random.default_rng(5)
    spec = use_case.table_spec(use_case.tables.scoring.predictions)
    n = len(ids)
    reasons = [[] if i % 7 == 0 else ["R01", "R07", "R11"][: 1 + i % 3] for i in range(n)]
    frame = pl.DataFrame(
        {
            "prediction_id": [f"run:{i}" for i in ids],
            "scoring_run_id": ["run"] * n,
            "customer_id": ids,
            "as_of_date": [DAY] * n,
            "event_timestamp": [stamp] * n,
            "score": rng.random(n),
            "risk_band": rng.choice(["low", "medium", "high"], n),
            "decision": rng.choice(["none", "outreach"], n),
            "missing_feature_count": rng.integers(0, 3, n),
            "reason_codes": reasons,
            "reason_features": [[f"f{len(r)}"] * len(r) for r in reasons],
            "reason_values": [[1.5] * len(r) for r in reasons],
            "reason_contributions": [list(rng.normal(size=len(r))) for r in reasons],
            "model_name": ["churn"] * n,
            "model_version": [str(1 + i % 2) for i in range(n)],
            "model_alias": ["champion"] * n,
            "model_sha256": ["0" * 64] * n,
            "feature_service": ["churn_v1"] * n,
            "source_versions": ["{}"] * n,
            "training_set_version": [0] * n,
            "dagster_run_id": ["run"] * n,
            "partition": [DAY.isoformat()] * n,
            "code_version": ["test"] * n,
            "scored_at": [stamp + timedelta(seconds=i % 60) for i in range(n)],
        }
    )
    return frame.select([pl.col(c).cast(t) for c, t in spec.polars_schema.items()])


def _served(store, views: list, ids: list[str]) -> pl.DataFrame:
    refs = [f"{v.name}:{f.name}" for v in views for f in v.features]
    rows = [{"customer_id": i} for i in ids]
    return pl.DataFrame(store.get_online_features(features=refs, entity_rows=rows).to_dict())


def test_the_direct_writer_serves_what_feast_serves_from_sqlite(
    services: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import redis

    monkeypatch.setenv("SCOREHOUSE_USE_CASES", "churn")  # the Feast repo of the tables built here
    use_case = load_use_cases()["churn"]
    uri = str(tmp_path / "lake")
    lake = load_use_cases().lakehouse(uri)
    tables = synthetic_features(CUSTOMERS, seed=2)
    for name, frame in tables.items():
        lake.append(name, frame)
    ids = sorted(tables["features.customer_account"]["customer_id"].to_list())
    stamp = datetime.combine(DAY + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    lake.append(use_case.tables.scoring.predictions, _predictions(use_case, ids, stamp))
    apply(uri)
    sqlite = feature_store(uri)
    names = [*[v.name for v in use_case.features.views], "churn_prediction"]
    views = [sqlite.get_feature_view(n) for n in names]
    start, end = stamp - timedelta(days=1), stamp + timedelta(minutes=1)
    sqlite.materialize(start_date=start, end_date=end, feature_views=names)

    url = urlsplit(services["SCOREHOUSE_REDIS_URL"])._replace(path=f"/{ONLINE_DB}").geturl()
    redis.Redis.from_url(url).flushdb()
    monkeypatch.setenv("SCOREHOUSE_FEAST_ONLINE_STORE", url)
    online = feature_store(uri)
    assert online.config.online_store.type == "redis"
    done = materialize(online, start, end, names, batch_rows=1_000)  # several batches
    assert [d.written for d in done] == [CUSTOMERS] * len(names)

    asked = [*ids[:: max(1, CUSTOMERS // 500)], "C-unknown"]
    expected, served = _served(sqlite, views, asked), _served(online, views, asked)
    assert served.equals(expected)
    assert served.filter(pl.col("customer_id") == "C-unknown")["score"].to_list() == [None]
    intervals = online.get_feature_view("customer_account").materialization_intervals
    assert intervals and intervals[-1][1] == end

    # An older window changes nothing (Feast keeps the newer row; so does the writer).
    moved = ["event_timestamp", "created_timestamp", "feature_date"]
    older = tables["features.customer_account"].with_columns(pl.col(moved) - timedelta(days=1))
    numeric = [c for c, t in older.schema.items() if t == pl.Float64]
    lake.append("features.customer_account", older.with_columns(pl.col(numeric) * 2))
    window = (start - timedelta(days=1), start + timedelta(minutes=1))
    [skipped] = materialize(feature_store(uri), *window, ["customer_account"])
    assert (skipped.written, skipped.skipped) == (0, CUSTOMERS)
    assert _served(feature_store(uri), views, asked).equals(expected)
    assert os.environ["SCOREHOUSE_FEAST_ONLINE_STORE"] == url
