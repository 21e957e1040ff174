"""Lakehouse write/read speed against raw Parquet on the same frame, in the same process.

For each size (default 1M and 10M rows × 20 columns, 10 daily partitions) it times, as medians of
repeats: the raw baselines (polars ``write_parquet``, pyarrow ``write_table``, delta-rs
``write_deltalake``, polars ``read_parquet``) and the lakehouse operations (append, partition
replace, merge of 1 % changed rows, full read, filtered read, time-travel read). Each lakehouse
operation is reported as a ratio to the raw Parquet operation on the same rows, with the peak
resident memory it added.

An object-store section (default 1M rows) starts a local S3 emulator (moto's server, see
``tests/s3.py``) and times the lakehouse append on ``s3://`` (the same fast path: polars writes
the files, their footers give the statistics, one commit) against the local append, with
delta-rs ``write_deltalake`` on the emulator (the path object stores took before) as the old
baseline. The emulator is a Python process on the same cores, so its ratios are an upper bound
of what a real object store costs in CPU, not of its network latency. The section reports the
emulator's own CPU seconds per operation (``/proc``); ``--pin-emulator`` gives the emulator a
core of its own and the benchmark the others (the local baseline too), as a real object store
runs on other machines.

    python benchmarks/bench_lakehouse.py                 # 1M and 10M rows, 1M on the emulator
    python benchmarks/bench_lakehouse.py --rows 100000 --repeats 1 --object-store-rows 100000
    python benchmarks/bench_lakehouse.py --rows 1000000 --object-store-rows 0   # no emulator
    python benchmarks/bench_lakehouse.py --rows 0 --object-store-rows 1000000 --pin-emulator
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
from deltalake import write_deltalake

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.measure import PeakRss
from lakehouse.catalog import Catalog, TableSpec
from lakehouse.storage import Lakehouse

PARTITIONS = 10
START = date(2025, 1, 1)


def make_frame(rows: int, seed: int = 0) -> pl.DataFrame:
    """A usage-like frame: keys, a date partition, a timestamp, 8 floats, 6 ints, 3 strings."""
    rng = np.random.default_rng(seed)
    days = np.arange(rows) % PARTITIONS
    data: dict[str, object] = {
        "customer_id": np.arange(rows) // PARTITIONS,
        "day": [START + timedelta(days=int(d)) for d in range(PARTITIONS)],
    }
    frame = pl.DataFrame({"customer_id": data["customer_id"], "day_index": days})
    frame = frame.with_columns(
        (pl.lit(START) + pl.duration(days=pl.col("day_index"))).alias("day"),
        (pl.lit(datetime(2025, 1, 1, tzinfo=UTC)) + pl.duration(seconds=pl.int_range(rows))).alias(
            "updated_at"
        ),
        *[pl.Series(f"f{i}", rng.normal(size=rows)) for i in range(8)],
        *[pl.Series(f"i{i}", rng.integers(0, 1000, size=rows)) for i in range(6)],
        *[
            pl.Series(f"s{i}", rng.choice(["alpha", "beta", "gamma", "delta"], size=rows))
            for i in range(3)
        ],
    ).drop("day_index")
    return frame


def spec_for(frame: pl.DataFrame) -> TableSpec:
    return TableSpec(
        name="bench.usage",
        schema=dict(frame.schema),
        description="benchmark table",
        partition_by=("day",),
        primary_key=("customer_id", "day"),
    )


@dataclass
class Timing:
    name: str
    seconds: float
    peak_mib: float


def measure(name: str, fn: Callable[[], object], repeats: int, setup: Callable[[], None]) -> Timing:
    times, peaks = [], []
    for _ in range(repeats):
        setup()
        with PeakRss() as rss:
            started = time.perf_counter()
            fn()
            times.append(time.perf_counter() - started)
        peaks.append(rss.added_mib)
    return Timing(name, statistics.median(times), max(peaks))


def measure_rounds(
    named: list[tuple[str, Callable[[], object]]], repeats: int, setup: Callable[[], None]
) -> list[Timing]:
    """Like ``measure``, but one repeat of every operation per round: load that varies over the
    run affects each operation alike, so their ratios hold."""
    times: dict[str, list[float]] = {name: [] for name, _ in named}
    peaks: dict[str, list[float]] = {name: [] for name, _ in named}
    for _ in range(repeats):
        for name, fn in named:
            setup()
            with PeakRss() as rss:
                started = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - started)
            peaks[name].append(rss.added_mib)
    return [Timing(n, statistics.median(times[n]), max(peaks[n])) for n, _ in named]


def run_size(rows: int, repeats: int, workdir: Path) -> list[tuple[Timing, Timing | None]]:
    frame = make_frame(rows)
    spec = spec_for(frame)
    lake_root = workdir / "lake"
    lake = Lakehouse(lake_root, catalog=Catalog([spec]))
    raw_file = workdir / "raw.parquet"
    delta_rs_dir = workdir / "delta_rs"
    arrow = frame.to_arrow()
    part_day = START + timedelta(days=3)
    partition = frame.filter(pl.col("day") == part_day)
    part_file = workdir / "partition.parquet"

    def clean() -> None:
        for path in (lake_root, delta_rs_dir):
            shutil.rmtree(path, ignore_errors=True)
        for path in (raw_file, part_file):
            path.unlink(missing_ok=True)

    def nothing() -> None:
        return None

    def fresh_table() -> None:
        clean()
        lake.append("bench.usage", frame)

    # Changed rows: 1 % of keys, spread over every partition, with new values.
    changed = frame.sample(fraction=0.01, seed=1).with_columns(pl.col("f0") + 1.0)

    results: list[tuple[Timing, Timing | None]] = []
    polars_write = measure(
        "polars write_parquet", lambda: frame.write_parquet(raw_file), repeats, clean
    )
    pyarrow_write = measure(
        "pyarrow write_table", lambda: pq.write_table(arrow, raw_file), repeats, clean
    )
    delta_rs_write = measure(
        "delta-rs write_deltalake",
        lambda: write_deltalake(delta_rs_dir, arrow, partition_by=["day"]),
        repeats,
        clean,
    )
    fastest_write = min(polars_write, pyarrow_write, key=lambda t: t.seconds)
    append = measure("lakehouse append", lambda: lake.append("bench.usage", frame), repeats, clean)
    results += [(polars_write, None), (pyarrow_write, None), (delta_rs_write, fastest_write)]
    results.append((append, fastest_write))

    raw_partition = measure(
        "polars write_parquet (1 partition)",
        lambda: partition.write_parquet(part_file),
        repeats,
        nothing,
    )
    replace = measure(
        "lakehouse partition replace",
        lambda: lake.replace("bench.usage", partition, partition={"day": part_day}),
        repeats,
        fresh_table,
    )
    results += [(replace, raw_partition)]
    merge = measure(
        "lakehouse merge 1% changed",
        lambda: lake.merge("bench.usage", changed),
        repeats,
        fresh_table,
    )
    results.append((merge, polars_write))

    fresh_table()
    frame.write_parquet(raw_file)
    lake.append("bench.usage", frame.head(1000).with_columns(pl.col("customer_id") + rows))
    raw_read = measure("polars read_parquet", lambda: pl.read_parquet(raw_file), repeats, nothing)
    read = measure("lakehouse full read", lambda: lake.read("bench.usage"), repeats, nothing)
    where = (pl.col("day") == part_day) & (pl.col("customer_id") < rows // (PARTITIONS * 10))
    raw_filtered = measure(
        "polars scan_parquet filtered",
        lambda: pl.scan_parquet(raw_file).filter(where).collect(),
        repeats,
        nothing,
    )
    filtered = measure(
        "lakehouse filtered read", lambda: lake.read("bench.usage", where=where), repeats, nothing
    )
    travel = measure(
        "lakehouse time-travel read (v0)",
        lambda: lake.read("bench.usage", version=0),
        repeats,
        nothing,
    )
    results += [(raw_read, None), (read, raw_read), (raw_filtered, None), (filtered, raw_filtered)]
    results.append((travel, raw_read))
    clean()
    return results


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_object_store(
    rows: int, repeats: int, workdir: Path, *, pin: bool = False
) -> tuple[list[tuple[Timing, Timing | None]], dict[str, float]]:
    """Append ``rows`` locally, on the S3 emulator through the lakehouse, and with delta-rs;
    also the emulator's median CPU seconds per S3 operation. ``pin``: the emulator on the last
    CPU, this process on the others."""
    from tests.s3 import S3Emulator  # the project's emulator: dev dependency moto

    frame = make_frame(rows)
    catalog = Catalog([spec_for(frame)])
    local = Lakehouse(workdir / "local", catalog=catalog)
    with S3Emulator(workdir / "s3") as emulator:
        assert emulator.pid is not None
        server = emulator.pid
        if pin:
            cpus = sorted(os.sched_getaffinity(0))
            if len(cpus) < 2:
                raise SystemExit("--pin-emulator needs at least 2 CPUs")
            os.sched_setaffinity(server, {cpus[-1]})
            os.sched_setaffinity(0, set(cpus[:-1]))
        options = emulator.storage_options()
        server_cpu: dict[str, list[float]] = {}

        def on_server(name: str, fn: Callable[[], object]) -> Callable[[], object]:
            def run() -> None:
                before = cpu_seconds(server)
                fn()
                server_cpu.setdefault(name, []).append(cpu_seconds(server) - before)

            return run

        target: dict[str, str] = {}

        def fresh_bucket() -> None:
            shutil.rmtree(workdir / "local", ignore_errors=True)
            emulator.reset()  # the emulator keeps objects in memory: drop the last repeat's
            target["uri"] = f"s3://{emulator.create_bucket()}/lake"

        def s3_append() -> None:
            lake = Lakehouse(target["uri"], catalog=catalog, storage_options=options)
            lake.append("bench.usage", frame)

        def delta_rs_write() -> None:
            write_deltalake(
                f"{target['uri']}/delta_rs",
                frame.to_arrow(),
                partition_by=["day"],
                storage_options=options,
            )

        s3_name, old_name = (
            "lakehouse append (S3 emulator)",
            "delta-rs write_deltalake (S3 emulator, old path)",
        )
        local_append, s3, old = measure_rounds(
            [
                ("lakehouse append (local)", lambda: local.append("bench.usage", frame)),
                (s3_name, on_server(s3_name, s3_append)),
                (old_name, on_server(old_name, delta_rs_write)),
            ],
            repeats,
            fresh_bucket,
        )
    emulator_cpu = {name: statistics.median(values) for name, values in server_cpu.items()}
    return [(local_append, None), (s3, local_append), (old, local_append)], emulator_cpu


def render(rows: int, results: list[tuple[Timing, Timing | None]], title: str | None = None) -> str:
    lines = [
        title or f"### {rows:,} rows × 20 columns, {PARTITIONS} partitions",
        "",
        "| operation | median s | peak +MiB | vs baseline | baseline |",
        "|---|---:|---:|---:|---|",
    ]
    for timing, base in results:
        ratio = f"{timing.seconds / base.seconds:.2f}×" if base else "—"
        lines.append(
            f"| {timing.name} | {timing.seconds:.3f} | {timing.peak_mib:.0f} | {ratio} | "
            f"{base.name if base else 'baseline'} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "lakehouse.md"
    )
    parser.add_argument(
        "--object-store-rows",
        type=int,
        default=1_000_000,
        help="rows of the object-store section on the S3 emulator (0: skip it)",
    )
    parser.add_argument(
        "--pin-emulator",
        action="store_true",
        help="run the emulator on a CPU of its own, the benchmark on the others",
    )
    args = parser.parse_args(argv)
    sections = []
    for rows in (r for r in args.rows if r):
        with tempfile.TemporaryDirectory(prefix="scorehouse-bench-") as tmp:
            print(f"benchmarking {rows:,} rows …", file=sys.stderr, flush=True)
            section = render(rows, run_size(rows, args.repeats, Path(tmp)))
        print(section + "\n", flush=True)
        sections.append(section)
    if args.object_store_rows:
        rows = args.object_store_rows
        with tempfile.TemporaryDirectory(prefix="scorehouse-bench-") as tmp:
            print(f"benchmarking {rows:,} rows on the S3 emulator …", file=sys.stderr, flush=True)
            title = f"### Object store: {rows:,} rows × 20 columns appended on a local S3 emulator"
            if args.pin_emulator:
                title += " (emulator on a CPU of its own)"
            results, emulator_cpu = run_object_store(
                rows, args.repeats, Path(tmp), pin=args.pin_emulator
            )
            section = render(rows, results, title) + "\n\nEmulator CPU per operation (median): "
            section += ", ".join(f"{n} {s:.3f} s" for n, s in emulator_cpu.items())
        print(section + "\n", flush=True)
        sections.append(section)
    report = "# Lakehouse benchmark\n\n" + "\n\n".join(sections) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    return report


if __name__ == "__main__":
    main()
