"""Online feature lookups: p50/p99 latency for 1 and 100 customers, SDK and HTTP.

The repo's feature views are materialized from Delta (our offline store) into the SQLite
online store; lookups then go through plain Feast: ``FeatureStore.get_online_features`` (SDK)
and Feast's feature server's ``POST /get-online-features`` (HTTP, one keep-alive connection). Our
code is not on this path at all (the offline store only fills the online store), so these are
plain Feast's latencies on this SQLite store; the target is p99 ≤ 5 ms for 1 customer over HTTP.

    python benchmarks/bench_online.py --customers 10000 --requests 500
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_scoring import CHURN, DAY, synthetic_features
from models.usecase import load_use_cases

FEATURES = [
    "customer_activity:sessions_7d_sum",
    "customer_activity:usage_trend_7d_30d",
    "customer_billing:failed_payments_30d",
    "customer_support:tickets_30d",
    "customer_account:plan",
]


def percentiles(samples: list[float]) -> tuple[float, float]:
    values = np.array(samples) * 1000
    return float(np.percentile(values, 50)), float(np.percentile(values, 99))


def sdk_latency(store, ids: list[str], batch: int, requests: int) -> list[float]:
    rng = np.random.default_rng(0)
    times = []
    for _ in range(requests):
        chosen = rng.choice(ids, batch, replace=False).tolist()
        started = time.perf_counter()
        store.get_online_features(
            features=FEATURES, entity_rows=[{"customer_id": c} for c in chosen]
        ).to_dict()
        times.append(time.perf_counter() - started)
    return times


def http_latency(port: int, ids: list[str], batch: int, requests: int) -> list[float]:
    rng = np.random.default_rng(1)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    times = []
    for _ in range(requests):
        body = json.dumps(
            {"features": FEATURES, "entities": {"customer_id": rng.choice(ids, batch).tolist()}}
        )
        started = time.perf_counter()
        connection.request(
            "POST", "/get-online-features", body, {"Content-Type": "application/json"}
        )
        response = connection.getresponse()
        payload = response.read()
        times.append(time.perf_counter() - started)
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {payload[:200]!r}")
    connection.close()
    return times


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(home: Path) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    serve = (  # Feast's own feature server (``scorehouse serve`` is the scoring service)
        "from feature_repo.config import feature_store; "
        f"feature_store().serve(host='127.0.0.1', port={port}, type_='http', no_access_log=True)"
    )
    server = subprocess.Popen(
        [sys.executable, "-c", serve],
        env={**os.environ, "SCOREHOUSE_HOME": str(home)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return server, port
        time.sleep(0.5)
    server.terminate()
    raise RuntimeError("feature server did not start")


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "online.md")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="scorehouse-bench-") as tmp:
        root = Path(tmp)
        home = root / "home"
        os.environ["SCOREHOUSE_HOME"] = str(home)
        os.environ["SCOREHOUSE_LAKEHOUSE_URI"] = str(root / "lake")
        from feature_repo.config import apply, feature_store

        lake = load_use_cases().lakehouse(root / "lake")
        for name, frame in synthetic_features(args.customers).items():
            lake.append(name, frame)
        lake.create_if_missing(CHURN.tables.scoring.predictions)
        apply()
        store = feature_store()
        start = datetime.combine(DAY, datetime.min.time(), tzinfo=UTC)
        store.materialize(start, start + timedelta(days=2))
        ids = [f"C{i:08d}" for i in range(args.customers)]

        rows = []
        for batch in (1, 100):
            sdk_latency(store, ids, batch, 20)  # warm-up
            rows.append(("SDK", batch, *percentiles(sdk_latency(store, ids, batch, args.requests))))
        server, port = _serve(home)
        try:
            for batch in (1, 100):
                http_latency(port, ids, batch, 20)
                rows.append(
                    ("HTTP", batch, *percentiles(http_latency(port, ids, batch, args.requests)))
                )
        finally:
            server.terminate()
            server.wait(timeout=30)

    lines = [
        f"### Online lookups, {len(FEATURES)} features from 4 views, {args.customers:,} "
        f"customers in SQLite, {args.requests} requests each",
        "",
        "| path | customers per request | p50 ms | p99 ms |",
        "|---|---:|---:|---:|",
        *(f"| {path} | {batch} | {p50:.2f} | {p99:.2f} |" for path, batch, p50, p99 in rows),
    ]
    report = "\n".join(lines)
    print(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("# Online lookup benchmark\n\n" + report + "\n")
    return report


if __name__ == "__main__":
    main()
