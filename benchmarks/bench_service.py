"""The scoring service under load: latency percentiles and throughput at fixed request rates,
beside plain Feast (``get_online_features`` and its own HTTP server) measured in the same run.

World: ``--customers`` synthetic customers (the churn feature tables, one day), two registered
model versions (``--trees`` trees of depth 6), one batch scoring run of that day so every
customer has a cached score, and everything materialized into Feast's SQLite online store.

Load: an open-loop client on loopback only: request ``i`` is due at ``start + i / rate`` and is
sent by the first free thread of a pool, each thread on one keep-alive ``http.client``
connection. Latency runs from sending the request to the end of the response body; a request
sent more than 5 ms after it was due counts as "late" (the client, not the server, fell behind).
The service runs as ``scorehouse serve --workers 2``; Feast's server runs with its defaults.

Measured: in ``--rounds`` interleaved rounds (each measurement a second or two per round, so
baselines and service share the same machine state), the model work alone in process (predict
and exact TreeSHAP of one row at 100/s: the machine's speed at that moment, not a target), Feast
SDK lookups in process at 200/s, Feast's HTTP server at 200 req/s, the service's cached lookups
at 200 req/s, its on-demand scores of 1 customer at 100 req/s and of 100 customers in one
request at 10 req/s (features from the online store); then ``--duration`` seconds of cached
lookups at 500 req/s with an audited side stream of on-demand scores; then ``--duration``
seconds of mixed load during which the ``champion`` alias moves to the second version. Every
on-demand request carries an ``X-Request-ID``; after the server has stopped, the audit table
must hold a row for each acknowledged one, and no duplicate.

    python benchmarks/bench_service.py                      # about 7 minutes
    python benchmarks/bench_service.py --rounds 3 --duration 10 --customers 2000 --trees 50
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_scoring import (
    CHURN,
    DAY,
    ENCODING,
    joined_features,
    synthetic_features,
    train_model,
)
from models.usecase import load_use_cases
from orchestration.serving.online import PREDICTION_FIELDS as LOOKUP_FIELDS

PREDICTION_FIELDS = [f"{CHURN.name}_prediction:{f}" for f in LOOKUP_FIELDS]
LATE_S = 0.005
Request = tuple[str, str, bytes | None, dict[str, str]]


@dataclass
class Load:
    """Outcome of one open-loop run."""

    name: str
    rate: float
    latencies: list[float] = field(default_factory=list)
    server: list[float] = field(default_factory=list)  # Server-Timing app;dur, seconds
    errors: int = 0
    late: int = 0
    elapsed: float = 0.0
    versions: list[tuple[float, str]] = field(default_factory=list)  # (sent at, X-Model-Version)
    acknowledged: list[str] = field(default_factory=list)  # X-Request-ID of 200 answers

    def percentile(self, q: float) -> float:
        return float(np.percentile(np.array(self.latencies) * 1000, q))

    def server_percentile(self, q: float) -> float | None:
        """The service's own time (``Server-Timing``), None for a server that sends none."""
        return float(np.percentile(np.array(self.server) * 1000, q)) if self.server else None

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    def merge(self, part: Load) -> None:
        self.latencies += part.latencies
        self.server += part.server
        self.errors += part.errors
        self.late += part.late
        self.elapsed += part.elapsed
        self.versions += part.versions
        self.acknowledged += part.acknowledged


def run_load(
    port: int,
    name: str,
    make: Callable[[int], Request],
    rate: float,
    seconds: float,
    *,
    threads: int = 16,
    track: bool = False,
    offset: int = 0,
) -> Load:
    """Send ``rate * seconds`` requests on schedule (``make(offset + i)``); see the module
    docstring."""
    total = int(rate * seconds)
    result = Load(name, rate)
    counter = itertools.count()
    lock = threading.Lock()
    start = time.perf_counter() + 0.2

    def worker() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while (i := next(counter)) < total:
            due = start + i / rate
            if (wait := due - time.perf_counter()) > 0:
                time.sleep(wait)
            method, path, body, headers = make(offset + i)
            sent = time.perf_counter()
            try:
                connection.request(method, path, body, headers)
                response = connection.getresponse()
                response.read()
                ok = response.status == 200
                version = response.getheader("X-Model-Version") or ""
                timing = response.getheader("Server-Timing")
            except (OSError, http.client.HTTPException):
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                ok, version, timing = False, "", None
            done = time.perf_counter()
            with lock:
                result.latencies.append(done - sent)
                if timing is not None and timing.startswith("app;dur="):
                    result.server.append(float(timing[8:]) / 1000)
                result.late += sent - due > LATE_S
                result.errors += not ok
                if track:
                    result.versions.append((sent - start, version))
                    if ok and "X-Request-ID" in headers:
                        result.acknowledged.append(headers["X-Request-ID"])
        connection.close()

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    result.elapsed = time.perf_counter() - start
    return result


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_http(port: int, path: str, process: subprocess.Popen, ok: set[int], timeout=240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", path)
            if connection.getresponse().status in ok:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"server on {port} not ready")


def _wait_workers(port: int, process: subprocess.Popen, workers: int) -> None:
    """Until every worker answers /readyz (each new connection lands on either)."""
    seen: set[int] = set()
    deadline = time.monotonic() + 300
    while len(seen) < workers:
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("scoring service did not get ready")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/readyz")
            response = connection.getresponse()
            body = json.loads(response.read())
            if response.status == 200:
                seen.add(body["pid"])
        except (OSError, ValueError):
            pass
        time.sleep(0.2)


def register(registry, booster, training_set_version: int) -> str:
    """Register ``booster`` as a version of the churn model (MLflow's xgboost format)."""
    import mlflow
    import mlflow.xgboost

    mlflow.set_tracking_uri(registry.uri)
    mlflow.set_registry_uri(registry.uri)
    experiment = registry.experiment_id()
    with mlflow.start_run(experiment_id=experiment) as run:
        info = mlflow.xgboost.log_model(booster, name="model", model_format="json")
    try:
        registry.client.get_registered_model(registry.model_name)
    except Exception:
        registry.client.create_registered_model(registry.model_name)
    tags = {
        "feature_service": CHURN.features.service,
        "training_set_version": str(training_set_version),
        "iteration_range": f"0,{booster.num_boosted_rounds()}",
    }
    created = registry.client.create_model_version(
        registry.model_name, info.model_uri, run.info.run_id, tags=tags
    )
    return str(created.version)


def build_world(root: Path, customers: int, trees: int) -> tuple[list[str], list[str]]:
    """Features, two model versions (the first the champion), a scored day, all online."""
    from feature_repo.config import feature_store
    from models.lifecycle.registry import CHAMPION, ModelRegistry
    from models.scoring.batch import ScoringRun, load_model, pin_feature_versions, score_day
    from orchestration.resources import FeatureStoreResource

    lake = load_use_cases().lakehouse(root / "lake")
    tables = synthetic_features(customers)
    for name, frame in tables.items():
        lake.append(name, frame)
    # Every use case's views are registered: their tables are created empty first.
    FeatureStoreResource(lakehouse_uri=str(root / "lake")).apply()
    registry = ModelRegistry(CHURN.model_name)
    versions = []
    for seed in (0, 1):
        sample = {n: f.sample(fraction=0.9, seed=seed) for n, f in tables.items()}
        versions.append(register(registry, train_model(sample, trees, 6), seed))
    registry.set_alias(CHAMPION, versions[0])
    pins = pin_feature_versions(lake, CHURN.tables.feature_tables)
    run = ScoringRun("bench-batch", DAY, "bench", "bench", pins, datetime.now(UTC))
    store = feature_store(str(root / "lake"), pins=pins)
    score_day(lake, store, CHURN, load_model(registry), run, CHURN.scoring)
    start = datetime.combine(DAY, datetime.min.time(), tzinfo=UTC)
    feature_store(str(root / "lake")).materialize(start, start + timedelta(days=2))
    return [f"C{i:08d}" for i in range(customers)], versions


def paced(name: str, rate: float, seconds: float, call: Callable[[int], object]) -> Load:
    """``call(i)`` in this process, one thread, request ``i`` due at ``start + i / rate`` like
    the HTTP runs."""
    result = Load(name, rate)
    start = time.perf_counter()
    for i in range(int(rate * seconds)):
        due = start + i / rate
        if (wait := due - time.perf_counter()) > 0:
            time.sleep(wait)
        sent = time.perf_counter()
        call(i)
        result.latencies.append(time.perf_counter() - sent)
        result.late += sent - due > LATE_S
    result.elapsed = time.perf_counter() - start
    return result


def sdk_lookups(
    store, entity: Callable[[int], str], rate: float, seconds: float, offset: int
) -> Load:
    """``get_online_features`` in this process, paced like the HTTP runs."""

    def lookup(i: int) -> object:
        return store.get_online_features(
            features=PREDICTION_FIELDS, entity_rows=[{"customer_id": entity(offset + i)}]
        ).to_dict()

    return paced("Feast SDK get_online_features, in process", rate, seconds, lookup)


def model_alone(model, explainer, rows: np.ndarray, rate: float, seconds: float) -> Load:
    """Model work of one customer with nothing around it: xgboost's ``predict`` (as batch
    scoring predicts; the service predicts a request's rows with the compiled trees, faster) and
    exact TreeSHAP of one row, in this process, paced like the HTTP runs (so caches are as cold).
    Not a target: the machine's speed at that moment, to read the other rows against."""

    def work(i: int) -> object:
        row = rows[i % len(rows)][None, :]
        model.predict(row)
        return explainer.shap_values(row, n_threads=1)

    name = "baseline: xgboost predict + exact TreeSHAP in process, 1 row"
    return paced(name, rate, seconds, work)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def _start(command: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        command,
        env={**os.environ},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: stopped with every worker
    )


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--trees", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=15, help="interleaved latency rounds")
    parser.add_argument("--duration", type=float, default=60, help="sustained/promotion runs")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "service.md"
    )
    args = parser.parse_args(argv)
    args.load_before = os.getloadavg()[0]  # other work on the machine skews every figure

    with tempfile.TemporaryDirectory(prefix="scorehouse-bench-") as tmp:
        root = Path(tmp)
        os.environ["SCOREHOUSE_HOME"] = str(root / "home")
        os.environ["SCOREHOUSE_LAKEHOUSE_URI"] = str(root / "lake")
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        print("building the world…", file=sys.stderr, flush=True)
        ids, versions = build_world(root, args.customers, args.trees)
        from feature_repo.config import feature_store

        store = feature_store()
        picks = np.random.default_rng(7).integers(len(ids), size=1_000_003)

        def entity(i: int) -> str:
            return ids[int(picks[i % len(picks)])]

        feast_port, port = _free_port(), _free_port()
        feast = _start(
            [
                sys.executable,
                "-c",
                "from feature_repo.config import feature_store; "
                f"feature_store().serve(host='127.0.0.1', port={feast_port}, type_='http')",
            ]
        )
        service = _start(
            [
                str(Path(sys.executable).parent / "scorehouse"),
                "serve",
                *("--port", str(port), "--workers", str(args.workers), "--poll", "2"),
                *("--spool-dir", str(root / "spool")),
            ]
        )
        json_headers = {"Content-Type": "application/json"}
        audited: dict[str, list[str]] = {}

        def feast_lookup(i: int) -> Request:
            body = {"features": PREDICTION_FIELDS, "entities": {"customer_id": [entity(i)]}}
            return "POST", "/get-online-features", json.dumps(body).encode(), json_headers

        def cached(i: int) -> Request:
            return "GET", f"/v1/churn/entities/{entity(i)}/score", None, {}

        def scored(tag: str, size: int = 1) -> Callable[[int], Request]:
            def make(i: int) -> Request:
                if size == 1:
                    body: dict = {"entity_id": entity(i)}
                else:
                    body = {"entities": [{"entity_id": entity(i * size + k)} for k in range(size)]}
                headers = {**json_headers, "X-Request-ID": f"{tag}-{i}"}
                return "POST", "/v1/churn/score", json.dumps(body).encode(), headers

            return make

        try:
            print("waiting for the servers…", file=sys.stderr, flush=True)
            _wait_http(feast_port, "/health", feast, {200})
            _wait_workers(port, service, args.workers)
            for target, make in [(feast_port, feast_lookup), (port, cached), (port, scored("w"))]:
                run_load(target, "warm-up", make, 100, 1)
            runs = latency_rounds(
                args.rounds, store, entity, feast_port, port, feast_lookup, cached, scored, audited
            )
            _stop(feast)
            print("sustained load…", file=sys.stderr, flush=True)
            runs += sustained(port, cached, scored("side"), args.duration, audited)
            print("promotion under load…", file=sys.stderr, flush=True)
            promotion = promote(port, scored("promo"), cached, args.duration, versions, audited)
            runs += promotion.loads
        finally:
            _stop(feast)
            _stop(service)  # SIGTERM: the workers commit their spools before they exit
        lost, duplicated, audit_rows = check_audit(audited)

    report = render(runs, promotion, lost, duplicated, audit_rows, args, versions)
    print(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("# Scoring service benchmark\n\n" + report + "\n")
    return report


def latency_rounds(
    rounds: int,
    store,
    entity: Callable[[int], str],
    feast_port: int,
    port: int,
    feast_lookup: Callable[[int], Request],
    cached: Callable[[int], Request],
    scored: Callable[..., Callable[[int], Request]],
    audited: dict[str, list[str]],
) -> list[Load]:
    """Each round runs every measurement for a second or two, one after the other, so that the
    baselines and the service see the same machine (other load on it comes and goes)."""
    one, hundred = scored("one"), scored("hundred", 100)
    model, explainer, rows = _champion_alone()
    plan: list[tuple[str, Callable[[int], Load]]] = [
        ("alone", lambda o: model_alone(model, explainer, rows, 100, 1)),
        ("sdk", lambda o: sdk_lookups(store, entity, 200, 1, o)),
        (
            "feast",
            lambda o: run_load(
                feast_port,
                "Feast HTTP server (FeatureStore.serve defaults), 1 customer",
                feast_lookup,
                200,
                1,
                offset=o,
            ),
        ),
        (
            "cached",
            lambda o: run_load(port, "service: cached score, 1 customer", cached, 200, 1, offset=o),
        ),
        (
            "one",
            lambda o: run_load(
                port,
                "service: on-demand score + exact SHAP + 3 reasons, 1 customer",
                one,
                100,
                1,
                offset=o,
                track=True,
            ),
        ),
        (
            "hundred",
            lambda o: run_load(
                port,
                "service: on-demand, 100 customers in one request",
                hundred,
                10,
                2,
                offset=o,
                track=True,
                threads=4,
            ),
        ),
    ]
    totals: dict[str, Load] = {}
    for r in range(rounds):
        print(f"latency round {r + 1}/{rounds}", file=sys.stderr, flush=True)
        for key, measure in plan:
            part = measure(r * 1000)
            totals.setdefault(key, Load(part.name, part.rate)).merge(part)
    audited["one"] = totals["one"].acknowledged
    audited["hundred"] = totals["hundred"].acknowledged
    return list(totals.values())


def _champion_alone():
    """The champion, its warmed explainer, and 1,000 encoded rows of the bench's features."""
    from models.lifecycle.registry import ModelRegistry
    from models.scoring.batch import load_model

    model = load_model(ModelRegistry(CHURN.model_name))
    explainer = model.explainer()
    rows = ENCODING.matrix(joined_features(synthetic_features(1_000)))
    explainer.shap_values(rows[:1], n_threads=1)  # compiled and warm, as the workers' are
    return model, explainer, rows


def sustained(
    port: int,
    cached: Callable[[int], Request],
    side: Callable[[int], Request],
    seconds: float,
    audited: dict[str, list[str]],
) -> list[Load]:
    """Cached lookups at 500 req/s, with an audited stream of on-demand scores beside them."""
    stream: list[Load] = []
    thread = threading.Thread(
        target=lambda: stream.append(
            run_load(port, "beside it: on-demand scores", side, 20, seconds, threads=2, track=True)
        )
    )
    thread.start()
    lookups = run_load(
        port,
        f"service: cached lookups, sustained {seconds:.0f} s",
        cached,
        500,
        seconds,
        threads=24,
    )
    thread.join()
    audited["side"] = stream[0].acknowledged
    return [lookups, *stream]


@dataclass
class Promotion:
    loads: list[Load]
    moved_at: float
    first_new: float | None
    last_old: float | None
    mixed: int  # responses whose X-Model-Version names not exactly one version
    failed: int


def promote(
    port: int,
    score: Callable[[int], Request],
    cached: Callable[[int], Request],
    seconds: float,
    versions: list[str],
    audited: dict[str, list[str]],
) -> Promotion:
    """Mixed load (on-demand 150 req/s + cached 150 req/s); the champion alias moves to the
    second version a third of the way in."""
    from models.lifecycle.registry import CHAMPION, ModelRegistry

    registry = ModelRegistry(CHURN.model_name)
    results: list[Load] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(
                run_load(port, "promotion: on-demand, 150 req/s", score, 150, seconds, track=True)
            )
        ),
        threading.Thread(
            target=lambda: results.append(
                run_load(port, "promotion: cached lookups, 150 req/s", cached, 150, seconds)
            )
        ),
    ]
    for thread in threads:
        thread.start()
    time.sleep(seconds / 3)
    registry.set_alias(CHAMPION, versions[1])
    moved = seconds / 3
    for thread in threads:
        thread.join()
    scored = next(r for r in results if r.versions)
    audited["promo"] = scored.acknowledged
    new = [t for t, v in scored.versions if v == versions[1]]
    old = [t for t, v in scored.versions if v == versions[0]]
    mixed = sum(1 for _, v in scored.versions if v not in versions)
    return Promotion(
        results,
        moved,
        min(new) if new else None,
        max(old) if old else None,
        mixed,
        sum(r.errors for r in results),
    )


def check_audit(audited: dict[str, list[str]]) -> tuple[int, int, int]:
    """(acknowledged requests missing from the audit table, duplicate rows, rows checked)."""
    lake = load_use_cases().lakehouse()
    table = lake.read(
        CHURN.tables.scoring.online_predictions,
        columns=["client_request_id", "request_id", "item", "role"],
    )
    acknowledged = {c for ids in audited.values() for c in ids}
    rows = table.filter(pl.col("client_request_id").is_in(list(acknowledged)))
    present = set(rows["client_request_id"])
    duplicated = int(table.select("request_id", "item", "role").is_duplicated().sum())
    return len(acknowledged - present), duplicated, rows.height


def render(
    runs: list[Load],
    promotion: Promotion,
    lost: int,
    duplicated: int,
    audit_rows: int,
    args: argparse.Namespace,
    versions: list[str],
) -> str:
    def row(load: Load) -> str:
        rate = "closed loop" if not load.rate else f"{load.rate:.0f}"
        p50, p99 = load.server_percentile(50), load.server_percentile(99)
        server = "–" if p50 is None or p99 is None else f"{p50:.2f} / {p99:.2f}"
        return (
            f"| {load.name} | {rate} | {len(load.latencies):,} | {load.throughput:,.0f} | "
            f"{load.percentile(50):.2f} | {load.percentile(95):.2f} | {load.percentile(99):.2f} | "
            f"{max(load.latencies) * 1000:.1f} | {server} | {load.errors} | {load.late} |"
        )

    def find(fragment: str) -> Load:
        return next(r for r in runs if fragment in r.name)

    feast_http, cached = find("Feast HTTP"), find("cached score, 1 customer")
    one, hundred, steady = find("3 reasons, 1 customer"), find("100 customers"), find("sustained")

    def mark(ok: bool) -> str:
        return "✓" if ok else "✗"

    switched = (
        f"first answer by v{versions[1]} {promotion.first_new - promotion.moved_at:.2f} s after "
        f"the alias moved, last by v{versions[0]} "
        f"{(promotion.last_old or 0) - promotion.moved_at:.2f} s after"
        if promotion.first_new is not None
        else "the new version never answered"
    )
    lines = [
        f"### {args.customers:,} customers in SQLite, {args.trees} trees of depth 6, "
        f"{len(CHURN.encoding.names)} features; service with {args.workers} workers, "
        f"{os.cpu_count()} CPUs shared by client and servers; 1-minute load average "
        f"{args.load_before:.1f} before, {os.getloadavg()[0]:.1f} after",
        "",
        "| run | req/s asked | requests | req/s done | p50 ms | p95 ms | p99 ms | max ms | "
        "service p50 / p99 ms | errors | late sends |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *(row(r) for r in runs),
        "",
        "Latency runs from the client sending a request to the end of the response body; "
        "the service's own time (its `Server-Timing` header) runs from the request reaching "
        "the app to the response's headers.",
        "",
        "Targets:",
        "",
        f"- cached score p99 ≤ 3 ms at 200 req/s: {cached.percentile(99):.2f} ms "
        f"{mark(cached.percentile(99) <= 3)}; ≤ Feast HTTP p99 ({feast_http.percentile(99):.2f} "
        f"ms): {mark(cached.percentile(99) <= feast_http.percentile(99))}",
        f"- on-demand 1 customer p99 ≤ 10 ms: {one.percentile(99):.2f} ms "
        f"{mark(one.percentile(99) <= 10)}",
        f"- on-demand batch of 100 p99 ≤ 30 ms: {hundred.percentile(99):.2f} ms "
        f"{mark(hundred.percentile(99) <= 30)}",
        f"- sustained 500 req/s for {args.duration:.0f} s: {steady.errors} errors, "
        f"{steady.throughput:,.0f} req/s done {mark(steady.errors == 0)}; audit: {lost} "
        f"acknowledged on-demand requests missing, {duplicated} duplicate rows "
        f"({audit_rows:,} rows checked) {mark(lost == 0 and duplicated == 0)}",
        f"- promotion during {args.duration:.0f} s of load: {promotion.failed} failed requests, "
        f"{promotion.mixed} answers not naming exactly one version "
        f"{mark(promotion.failed == 0 and promotion.mixed == 0)}; {switched}",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
