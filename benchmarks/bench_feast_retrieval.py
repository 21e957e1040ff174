"""Benchmark Feast historical retrieval: our Delta/polars store vs Feast's own stores.

Every method answers ``FeatureStore.get_historical_features(entity_df, features).to_arrow()``
(except ``duckdb-sql``, a hand-written DuckDB ASOF join used as a DuckDB baseline when
Feast's DuckDB store cannot run) on the same generated data:

* ``delta``      -- ``lakehouse.feast_delta.DeltaOfflineStore`` over a Delta table;
* ``dask``       -- Feast's default ``file`` (dask) store over the same rows as Parquet;
* ``duckdb``     -- Feast's ``duckdb`` (Ibis) store over that Parquet, if it runs here;
* ``duckdb-sql`` -- DuckDB's native ``ASOF LEFT JOIN`` over that Parquet (not Feast).

Each repeat runs in a fresh subprocess that reports its wall time for the retrieval call
and its peak RSS (``VmHWM``, which includes the Python/Feast baseline reported alongside).
Results are checked against a reference computed with DuckDB SQL (dedup by created
timestamp, ASOF join, TTL filter), matched on a row id carried in the entity frame, so
dropped, duplicated and wrong rows are all counted.

Usage::

    python benchmarks/bench_feast_retrieval.py --small
    python benchmarks/bench_feast_retrieval.py --feature-rows 1000000 5000000 \\
        --entity-rows 100000 500000 --repeats 3

Writes a markdown report to ``benchmarks/results/feast_retrieval.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

METHODS = ("delta", "dask", "duckdb", "duckdb-sql")
FEATURES = ("sessions", "spend", "plan")
TTL = timedelta(days=30)
START = datetime(2023, 1, 1, tzinfo=UTC)
SPAN = timedelta(days=365)
RESULTS = Path(__file__).resolve().parent / "results" / "feast_retrieval.md"
PROJECT_ROOT = Path(__file__).resolve().parents[1]

REFERENCE_SQL = """
WITH latest AS (
    SELECT customer_id, event_ts, sessions, spend, plan
    FROM read_parquet('{features}')
    QUALIFY row_number() OVER (
        PARTITION BY customer_id, event_ts ORDER BY created_ts DESC NULLS LAST) = 1
)
SELECT e.row_id, e.customer_id, e.event_timestamp,
       CASE WHEN f.event_ts >= e.event_timestamp - INTERVAL {ttl_s} SECOND
            THEN f.sessions END AS sessions,
       CASE WHEN f.event_ts >= e.event_timestamp - INTERVAL {ttl_s} SECOND
            THEN f.spend END AS spend,
       CASE WHEN f.event_ts >= e.event_timestamp - INTERVAL {ttl_s} SECOND
            THEN f.plan END AS plan
FROM read_parquet('{entities}') e
ASOF LEFT JOIN latest f
  ON e.customer_id = f.customer_id AND e.event_timestamp >= f.event_ts
"""


# --------------------------------------------------------------------------- data


def generate(data: Path, feature_rows: int, entity_rows: int, seed: int) -> None:
    """Write features as a Delta table and as Parquet, plus an entity Parquet file."""
    import numpy as np
    import polars as pl
    from deltalake import write_deltalake

    rng = np.random.default_rng(seed)
    customers = max(feature_rows // 50, 10)
    span_s = int(SPAN.total_seconds())
    start_us = int(START.timestamp() * 1_000_000)
    # Second resolution so that equal event timestamps (ties) occur.
    event_us = start_us + rng.integers(0, span_s, feature_rows) * 1_000_000
    sessions = rng.integers(0, 100, feature_rows)
    features = pl.DataFrame(
        {
            "customer_id": rng.integers(0, customers, feature_rows),
            "event_ts": event_us,
            "created_ts": event_us + rng.integers(0, 3_600_000_000, feature_rows),
            "sessions": pl.Series(sessions).set(pl.Series(rng.random(feature_rows) < 0.05), None),
            "spend": rng.random(feature_rows) * 100,
            "plan": pl.Series(rng.choice(["basic", "plus", "pro"], feature_rows)),
        }
    ).with_columns(
        pl.col("event_ts", "created_ts").cast(pl.Datetime("us", "UTC")),
        pl.col("sessions").cast(pl.Int64),
    )
    entity_ts = start_us + rng.integers(0, span_s * 1_000_000, entity_rows)
    entities = pl.DataFrame(
        {
            # A few customers past the feature range have no rows at all.
            "customer_id": rng.integers(0, int(customers * 1.02), entity_rows),
            "event_timestamp": entity_ts,
        }
    ).with_columns(pl.col("event_timestamp").cast(pl.Datetime("us", "UTC")))
    # 1% exact duplicates (same key and time): every entity row must still come back.
    entities = pl.concat([entities, entities.sample(fraction=0.01, seed=seed)])
    entities = entities.sample(fraction=1.0, shuffle=True, seed=seed).with_row_index("row_id")
    entities = entities.with_columns(pl.col("row_id").cast(pl.Int64))

    data.mkdir(parents=True, exist_ok=True)
    features.write_parquet(data / "features.parquet")
    entities.write_parquet(data / "entities.parquet")
    write_deltalake(data / "lake" / "features" / "activity", features.to_arrow(), mode="overwrite")


# --------------------------------------------------------------------------- workers


def _repo(data: Path, method: str) -> Any:
    """Create (once) and return a Feast repo for ``method`` over the generated data."""
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource
    from feast.types import Float64, Int64, String
    from feast.value_type import ValueType

    from lakehouse.feast_delta import DeltaSource

    repo = data / f"repo_{method}"
    repo.mkdir(exist_ok=True)
    lake = data / "lake"
    offline = {
        "delta": f"  type: lakehouse.feast_delta.DeltaOfflineStore\n  lakehouse_uri: {lake}\n",
        "dask": "  type: file\n",
        "duckdb": "  type: duckdb\n",
    }[method]
    (repo / "feature_store.yaml").write_text(
        "project: bench\nprovider: local\nregistry: data/registry.db\n"
        "online_store:\n  type: sqlite\n  path: data/online.db\n"
        f"offline_store:\n{offline}entity_key_serialization_version: 3\n"
    )
    if method == "delta":
        source: Any = DeltaSource(
            name="activity_source",
            path="features/activity",
            timestamp_field="event_ts",
            created_timestamp_column="created_ts",
        )
    else:
        source = FileSource(
            name="activity_source",
            path=str(data / "features.parquet"),
            timestamp_field="event_ts",
            created_timestamp_column="created_ts",
        )
    customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.INT64)
    view = FeatureView(
        name="activity",
        entities=[customer],
        ttl=TTL,
        source=source,
        schema=[
            Field(name="sessions", dtype=Int64),
            Field(name="spend", dtype=Float64),
            Field(name="plan", dtype=String),
        ],
    )
    store = FeatureStore(repo_path=str(repo))
    store.apply([customer, view])
    return store


def _rss_mb() -> float:
    """Peak RSS of this process in MiB.

    ``VmHWM`` belongs to the address space created by ``exec``; ``ru_maxrss`` would also
    count the parent's RSS at fork time, and the parent holds the generated data.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def worker(method: str, data: Path, output: Path | None) -> dict[str, Any]:
    """Run one timed retrieval in this process; optionally save the result."""
    import pyarrow.parquet as pq

    if method == "duckdb-sql":
        import duckdb

        query = REFERENCE_SQL.format(
            features=data / "features.parquet",
            entities=data / "entities.parquet",
            ttl_s=int(TTL.total_seconds()),
        )
        baseline = _rss_mb()
        started = time.perf_counter()
        table = duckdb.connect().sql(query).to_arrow_table()
    else:
        import pandas as pd

        store = _repo(data, method)
        entity = pd.read_parquet(data / "entities.parquet")
        refs = [f"activity:{f}" for f in FEATURES]
        baseline = _rss_mb()
        started = time.perf_counter()
        table = store.get_historical_features(entity_df=entity, features=refs).to_arrow()
    seconds = time.perf_counter() - started
    if output is not None:
        pq.write_table(table.select(["row_id", *FEATURES]), output)
    return {
        "seconds": seconds,
        "peak_rss_mb": _rss_mb(),
        "baseline_rss_mb": baseline,
        "rows": table.num_rows,
    }


def _describe(error: BaseException) -> str:
    """``Type: message`` of an exception and of each exception that caused it."""
    parts = []
    current: BaseException | None = error
    while current is not None and len(parts) < 4:
        parts.append(
            f"{type(current).__name__}: {str(current).splitlines()[0] if str(current) else ''}"
        )
        current = current.__cause__ or current.__context__
    return " <- ".join(parts)


def run_worker(method: str, data: Path, output: Path | None, timeout: float) -> dict[str, Any]:
    """Run :func:`worker` in a fresh interpreter; errors come back as ``{"error": ...}``."""
    command = [sys.executable, __file__, "--worker", method, "--data", str(data)]
    if output is not None:
        command += ["--output", str(output)]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {done.returncode}: {last[:300]}"}
    return json.loads(lines[-1])


# --------------------------------------------------------------------------- checking


def check(reference: Path, result: Path) -> dict[str, int]:
    """Compare a method's result with the reference, matched on ``row_id``."""
    import polars as pl

    ref = pl.read_parquet(reference)
    got = pl.read_parquet(result)
    joined = ref.join(got, on="row_id", how="inner", suffix="_got")
    mismatches = 0
    for name in FEATURES:
        common = pl.String if name == "plan" else pl.Float64  # dask turns nullable ints into floats
        same = joined[name].cast(common).eq_missing(joined[f"{name}_got"].cast(common))
        mismatches += int((~same).sum())
    return {
        "expected_rows": ref.height,
        "returned_rows": got.height,
        "missing_rows": ref.join(got, on="row_id", how="anti").height,
        "duplicated_rows": int(got["row_id"].is_duplicated().sum()),
        "mismatched_values": mismatches,
    }


# --------------------------------------------------------------------------- report


@dataclass
class Outcome:
    method: str
    runs: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    check: dict[str, int] | None = None

    @property
    def median(self) -> float | None:
        return statistics.median(r["seconds"] for r in self.runs) if self.runs else None

    @property
    def peak_mb(self) -> float | None:
        return max(r["peak_rss_mb"] for r in self.runs) if self.runs else None

    @property
    def baseline_mb(self) -> float | None:
        return max(r["baseline_rss_mb"] for r in self.runs) if self.runs else None

    def verdict(self) -> str:
        if self.check is None:
            return "-"
        c = self.check
        if c["missing_rows"] == c["duplicated_rows"] == c["mismatched_values"] == 0:
            return "equal to reference" if c["returned_rows"] == c["expected_rows"] else "?"
        return (
            f"{c['returned_rows']}/{c['expected_rows']} rows, {c['missing_rows']} missing, "
            f"{c['duplicated_rows']} duplicated, {c['mismatched_values']} values differ"
        )


def benchmark_size(
    feature_rows: int,
    entity_rows: int,
    methods: list[str],
    repeats: int,
    root: Path,
    timeout: float,
) -> list[Outcome]:
    data = root / f"f{feature_rows}_e{entity_rows}"
    print(f"\n== {feature_rows:,} feature rows / {entity_rows:,} entity rows ({data})", flush=True)
    generate(data, feature_rows, entity_rows, seed=feature_rows + entity_rows)
    reference = data / "reference.parquet"
    ref_run = run_worker("duckdb-sql", data, reference, timeout)
    if "error" in ref_run:
        raise RuntimeError(f"reference join failed: {ref_run['error']}")
    outcomes = []
    for method in methods:
        outcome = Outcome(method)
        for i in range(repeats):
            output = data / f"result_{method}.parquet" if i == 0 else None
            run = run_worker(method, data, output, timeout)
            if "error" in run:
                outcome.error = run["error"]
                break
            outcome.runs.append(run)
            seconds, peak = run["seconds"], run["peak_rss_mb"]
            print(f"  {method:<10} run {i + 1}: {seconds:.2f} s, peak {peak:.0f} MB", flush=True)
        if outcome.runs:
            outcome.check = check(reference, data / f"result_{method}.parquet")
        else:
            print(f"  {method:<10} unavailable: {outcome.error}", flush=True)
        outcomes.append(outcome)
    return outcomes


PACKAGES = ("feast", "polars", "deltalake", "duckdb", "dask", "ibis-framework")


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def render(sizes: list[tuple[int, int, list[Outcome]]], repeats: int) -> str:
    versions = ", ".join(f"{p} {_version(p)}" for p in PACKAGES)
    lines = [
        "# Feast historical retrieval benchmark",
        "",
        f"- {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.platform()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}",
        f"- {versions}",
        f"- One feature view (3 features, TTL {TTL.days} days, created-timestamp tie-break), "
        f"pandas entity frame with 1% duplicate rows; median of {repeats} runs, each in a "
        "fresh process; time covers `get_historical_features(...).to_arrow()` only.",
        "- Peak RSS is the process high-water mark; 'baseline' is the mark just before the "
        "timed call (interpreter, Feast, entity frame).",
        "- `duckdb-sql` is DuckDB's native ASOF join written by hand (not a Feast store); the "
        "reference for the check is the same query.",
        "",
    ]
    for feature_rows, entity_rows, outcomes in sizes:
        delta = next((o for o in outcomes if o.method == "delta"), None)
        lines += [
            f"## {feature_rows:,} feature rows / {entity_rows:,} entity rows",
            "",
            "| method | median s | min s | max s | time vs delta | peak RSS MB | baseline MB "
            "| check |",
            "|---|---:|---:|---:|---:|---:|---:|---|",
        ]
        for o in outcomes:
            if not o.runs:
                lines.append(f"| {o.method} | unavailable: {o.error} | | | | | | |")
                continue
            times = [r["seconds"] for r in o.runs]
            ratio = f"{o.median / delta.median:.1f}x" if delta and delta.median else "-"
            lines.append(
                f"| {o.method} | {o.median:.2f} | {min(times):.2f} | {max(times):.2f} | {ratio} "
                f"| {o.peak_mb:.0f} | {o.baseline_mb:.0f} | {o.verdict()} |"
            )
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feature-rows", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--entity-rows", type=int, nargs="+", default=[100_000, 500_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--small", action="store_true", help="20k/2k rows, one repeat")
    parser.add_argument("--workdir", type=Path, help="where data goes (default: a temp dir)")
    parser.add_argument("--report", type=Path, default=RESULTS)
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per run")
    parser.add_argument("--worker", choices=METHODS, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        try:
            print(json.dumps(worker(args.worker, args.data, args.output)))
        except Exception as e:  # reported as "unavailable: ..." by the parent
            print(json.dumps({"error": _describe(e)}))
        return 0
    if args.small:
        args.feature_rows, args.entity_rows, args.repeats = [20_000], [2_000], 1
    if len(args.feature_rows) != len(args.entity_rows):
        parser.error("--feature-rows and --entity-rows pair up: give as many of each")

    with tempfile.TemporaryDirectory(prefix="bench_feast_") as tmp:
        root = args.workdir or Path(tmp)
        sizes = [
            (f, e, benchmark_size(f, e, args.methods, args.repeats, root, args.timeout))
            for f, e in zip(args.feature_rows, args.entity_rows, strict=True)
        ]
    report = render(sizes, args.repeats)
    print("\n" + report)
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(report + "\n")
    print(f"report written to {args.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
