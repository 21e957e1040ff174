"""Training speed and peak memory at 100k and 1M training-set rows, against raw xgboost.

For each size a synthetic churn training set (the catalog schema, a real churn signal;
``tests/models/synthetic.py``) is trained with the production entry point
``models.training.train`` — input checks, time split, encoding, DMatrix construction, fit with
early stopping, evaluation — and, as the baseline, with ``xgboost.train`` alone on DMatrices
built beforehand from the same encoded splits with the same parameters (so both stop at the same
round). Each repeat runs in a fresh process: data generation and, for the baseline, DMatrix
construction happen before the clock and the memory sampler start. Times are medians of
repeats, interleaved across tasks; peak memory is the largest resident-set growth during a
repeat (sampled every 5 ms).

``OMP_WAIT_POLICY`` defaults to ``PASSIVE`` here (unless set): idle OpenMP threads then sleep
instead of spinning, which on a shared 2-core machine otherwise swings xgboost's wall and CPU
times several-fold from run to run.

    python benchmarks/bench_training.py             # 100k and 1M rows, 3 repeats
    python benchmarks/bench_training.py --small     # 20k rows, 1 repeat, in-process (smoke)
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # read once, when xgboost loads OpenMP

import numpy as np
import polars as pl
import xgboost as xgb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.measure import PeakRss  # noqa: E402
from models.training.params import TimeSplit, TrainingParams  # noqa: E402
from models.training.train import train  # noqa: E402
from tests.models.synthetic import CHURN, synthetic_training_set  # noqa: E402

ENCODING = CHURN.encoding

DAYS = 100  # as-of dates per customer: 42 train, 14 validation, 14 test days after the gap
DEFAULT_OUTPUT = ROOT / "benchmarks" / "results" / "training.md"


@dataclass(frozen=True)
class Measurement:
    seconds: float
    cpu_seconds: float
    """CPU time of the process (all threads): less sensitive than wall time to other load."""
    peak_mib: float


@dataclass(frozen=True)
class Result:
    rows: int
    train_rows: int
    best_iteration: int
    encode: Measurement
    ours: Measurement
    raw: Measurement
    test_roc_auc: float

    @property
    def ratio(self) -> float:
        return self.ours.seconds / self.raw.seconds

    @property
    def cpu_ratio(self) -> float:
        return self.ours.cpu_seconds / self.raw.cpu_seconds


def _frame(rows: int) -> pl.DataFrame:
    return synthetic_training_set(customers=rows // DAYS, days=DAYS, seed=0).training_set


def _fit_matrices(frame: pl.DataFrame, params: TrainingParams) -> dict[str, xgb.DMatrix]:
    """The encoded train and validation DMatrices ``train()`` would build."""
    dates = frame["as_of_date"]
    split = TimeSplit.from_dates(dates.min(), dates.max(), params, CHURN.design.label_horizon_days)
    return {
        name: xgb.DMatrix(
            ENCODING.matrix(part := split.rows(frame, name)),
            label=part[ENCODING.label].to_numpy(),
            feature_names=ENCODING.names,
            missing=np.nan,
        )
        for name in ("train", "validation")
    }


def _encode(frame: pl.DataFrame, params: TrainingParams, _: object) -> dict[str, float]:
    ENCODING.matrix(frame)
    return {}


def _ours(frame: pl.DataFrame, params: TrainingParams, _: object) -> dict[str, float]:
    model = train(frame, CHURN.design, params)
    return {
        "train_rows": model.rows["train"],
        "best_iteration": model.best_iteration,
        "test_roc_auc": model.metrics["test"]["roc_auc"],
    }


def _raw(frame: pl.DataFrame, params: TrainingParams, matrices: Any) -> dict[str, float]:
    booster = xgb.train(
        params.xgb_params(1.0),
        matrices["train"],
        num_boost_round=params.num_boost_round,
        evals=[(matrices["validation"], "validation")],
        early_stopping_rounds=params.early_stopping_rounds,
        verbose_eval=False,
    )
    return {"best_iteration": booster.best_iteration}


TASKS: dict[str, Callable[[pl.DataFrame, TrainingParams, Any], dict[str, float]]] = {
    "encode": _encode,
    "ours": _ours,
    "raw": _raw,
}


def _run_task(task: str, rows: int, params: TrainingParams) -> tuple[float, float, float, dict]:
    """Untimed set-up, then the task under the clock and the memory sampler."""
    frame = _frame(rows)
    matrices = _fit_matrices(frame, params) if task == "raw" else None
    with PeakRss() as rss:
        started, cpu_started = time.perf_counter(), time.process_time()
        summary = TASKS[task](frame, params, matrices)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    return seconds, cpu, rss.added_mib, summary


def _child(task: str, rows: int, params: TrainingParams, conn: Connection) -> None:
    conn.send(_run_task(task, rows, params))


def _once(
    task: str, rows: int, params: TrainingParams, isolated: bool
) -> tuple[float, float, float, dict]:
    """One repeat, in a fresh process when ``isolated`` (spawned, not forked: polars' and
    OpenMP's thread pools do not survive a fork), else in this process (quicker; memory
    figures then include allocator reuse)."""
    if not isolated:
        return _run_task(task, rows, params)
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(task, rows, params, sender))
    process.start()
    outcome = receiver.recv()
    process.join()
    return outcome


def run_size(rows: int, repeats: int, params: TrainingParams, isolated: bool = True) -> Result:
    """Repeats interleave the tasks (encode, ours, raw, encode, …) so that load from other
    work on the machine falls on all of them alike; medians per task."""
    runs: dict[str, list[tuple[float, float, float, dict]]] = {task: [] for task in TASKS}
    for _ in range(repeats):
        for task in TASKS:
            runs[task].append(_once(task, rows, params, isolated))

    def summary(task: str) -> Measurement:
        return Measurement(
            statistics.median(r[0] for r in runs[task]),
            statistics.median(r[1] for r in runs[task]),
            max(r[2] for r in runs[task]),
        )

    ours = runs["ours"][-1][3]
    return Result(
        rows=rows // DAYS * DAYS,
        train_rows=int(ours["train_rows"]),
        best_iteration=int(ours["best_iteration"]),
        encode=summary("encode"),
        ours=summary("ours"),
        raw=summary("raw"),
        test_roc_auc=ours["test_roc_auc"],
    )


def render(results: Sequence[Result], params: TrainingParams, repeats: int, isolated: bool) -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = [
        "# Training benchmark",
        "",
        f"Machine: {os.cpu_count()} cores ({platform.machine()}), Python "
        f"{platform.python_version()}, xgboost {xgb.__version__}; 1-minute load average "
        f"{load:.1f} at the end (other work on the machine inflates wall times); "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '')}.",
        f"Synthetic training set ({DAYS} as-of dates per customer, "
        f"{len(ENCODING.names)} features), "
        f"xgboost hist, depth {params.max_depth}, eta {params.learning_rate}, "
        f"{params.nthread} threads, early stopping after {params.early_stopping_rounds} rounds "
        f"(at most {params.num_boost_round}). Medians of {repeats} repeat(s); peak = largest "
        "resident-memory growth during a repeat.",
        "",
        "`train()` is the production entry point (checks, split, encoding, DMatrix, fit, "
        "evaluation); `xgboost.train` is the fit alone on DMatrices built beforehand. "
        + (
            "Each repeat runs in a fresh process."
            if isolated
            else "Repeats run in the benchmark's process (smoke run: memory includes reuse)."
        ),
        "",
        "| rows | train rows | best iteration | encode s | train() s (CPU s) | train() peak MiB "
        "| xgboost.train s (CPU s) | xgboost.train peak MiB | train() / xgboost.train wall "
        "(CPU) | test ROC-AUC |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.rows:,} | {r.train_rows:,} | {r.best_iteration} | {r.encode.seconds:.2f} "
            f"| {r.ours.seconds:.2f} ({r.ours.cpu_seconds:.2f}) | {r.ours.peak_mib:.0f} "
            f"| {r.raw.seconds:.2f} ({r.raw.cpu_seconds:.2f}) | {r.raw.peak_mib:.0f} "
            f"| {r.ratio:.2f}x ({r.cpu_ratio:.2f}x) | {r.test_roc_auc:.3f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> list[Result]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--small", action="store_true", help="20k rows, 1 repeat, in this process (smoke run)"
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    if args.small:
        args.rows, args.repeats = [20_000], 1
    params = replace(TrainingParams(), nthread=args.threads, min_rows=1000)
    results = []
    for rows in args.rows:
        result = run_size(rows, args.repeats, params, isolated=not args.small)
        print(
            f"{result.rows:>9,} rows: train() {result.ours.seconds:7.2f}s "
            f"(+{result.ours.peak_mib:.0f} MiB), xgboost.train {result.raw.seconds:7.2f}s "
            f"(+{result.raw.peak_mib:.0f} MiB), ratio {result.ratio:.2f}x "
            f"(CPU {result.cpu_ratio:.2f}x), "
            f"best iteration {result.best_iteration}",
            flush=True,
        )
        results.append(result)
    report = render(results, params, args.repeats, isolated=not args.small)
    print()
    print(report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report)
    return results


if __name__ == "__main__":
    main()
