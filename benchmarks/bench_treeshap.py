"""Benchmark TreeShapExplainer against shap.TreeExplainer and xgboost's pred_contribs.

Trains one binary model on synthetic data (40 % continuous features, 40 % counts, 20 % integer
category codes), then explains the same rows with every method and prints, per method, thread
count and row count: the median time over repeats, rows/s, the speed-up over shap.TreeExplainer
and the largest absolute difference from pred_contribs. One-time costs (table build, numba compile
with a cold and a warm on-disk cache) are reported separately, with the speed-up at the smallest
row count once they are included. The table is also written as markdown (default
``benchmarks/results/treeshap.md``).

    python benchmarks/bench_treeshap.py                  # full run: several minutes
    python benchmarks/bench_treeshap.py --skip-slow      # our kernel only (diffs on a sample)
    python benchmarks/bench_treeshap.py --small          # CI-size run
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb

from models.explain import TreeShapExplainer

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = REPO_ROOT / "benchmarks" / "results" / "treeshap.md"
DIFF_SAMPLE_ROWS = 2000  # rows checked against pred_contribs when the slow baselines are skipped


@dataclass(frozen=True)
class Result:
    """One timed method at one thread count and row count."""

    method: str
    threads: int
    rows: int
    seconds: float  # wall clock
    cpu_seconds: float  # process CPU time, all threads: steadier than wall on a busy machine
    max_abs_diff: float | None
    speedup: float | None = None  # wall-clock ratio to shap.TreeExplainer at the same rows

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("inf")


@dataclass(frozen=True)
class OneTimeCosts:
    """Costs paid once per model or per process, kept apart from the per-row timings."""

    build_seconds: float  # parse the model and build the tables (median over repeats)
    table_bytes: int
    first_call_seconds: float  # kernels' first call in this process (cache state as found)
    compile_cold_seconds: float | None  # fresh process, empty numba cache
    compile_warm_seconds: float | None  # fresh process, warm numba cache
    tree_explainer_init_seconds: float | None  # shap.TreeExplainer(booster) construction


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[20_000, 100_000])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3, help="repeats of our kernel")
    parser.add_argument(
        "--slow-repeats",
        type=int,
        default=1,
        help="repeats of the slow baselines (TreeExplainer, pred_contribs)",
    )
    parser.add_argument("--trees", type=int, default=200)
    parser.add_argument("--depth", type=int, default=6)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--train-rows", type=int, default=50_000)
    parser.add_argument(
        "--small",
        action="store_true",
        help="CI-size run: 1,000 rows, 20 trees of depth 4, 1 repeat",
    )
    parser.add_argument(
        "--skip-slow",
        action="store_true",
        help="skip shap.TreeExplainer and timed pred_contribs (minutes each)",
    )
    parser.add_argument(
        "--skip-compile",
        action="store_true",
        help="skip timing numba compilation in fresh processes",
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    if args.small:
        args.rows, args.trees, args.depth, args.train_rows = [1_000], 20, 4, 2_000
        args.repeats = args.slow_repeats = 1
    return args


def make_data(n_rows: int, n_features: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Continuous, count and category-code features with a nonlinear binary target."""
    rng = np.random.default_rng(seed)
    n_cont = max(1, round(0.4 * n_features))
    n_count = round(0.4 * n_features)
    n_cat = n_features - n_cont - n_count
    continuous = rng.normal(size=(n_rows, n_cont))
    counts = rng.poisson(np.linspace(0.5, 6.0, n_count), size=(n_rows, n_count))
    codes = rng.integers(0, np.arange(n_cat) * 3 + 3, size=(n_rows, n_cat))
    X = np.hstack([continuous, counts, codes]).astype(np.float64)
    logit = continuous[:, 0] + np.sin(2 * continuous[:, -1]) - 0.5
    if n_cont > 2:
        logit -= 0.6 * continuous[:, 1] * continuous[:, 2]
    if n_count:
        logit += 0.3 * counts[:, 0] - 0.2 * counts[:, -1]
    if n_cat:
        logit += 0.5 * (codes[:, 0] == 1)
    y = rng.random(n_rows) < 1.0 / (1.0 + np.exp(-logit))
    return X, y.astype(np.float64)


def train_model(args: argparse.Namespace) -> xgb.Booster:
    X, y = make_data(args.train_rows, args.features, seed=1)
    params = {
        "objective": "binary:logistic",
        "max_depth": args.depth,
        "eta": 0.1,
        "min_child_weight": 0.5,
        "tree_method": "hist",
        "nthread": max(args.threads),
    }
    return xgb.train(params, xgb.DMatrix(X, y), args.trees)


def median_time(fn: Callable[[], Any], repeats: int) -> tuple[float, float, Any]:
    """Median wall and CPU seconds of ``repeats`` calls, and the last call's result."""
    walls, cpus, result = [], [], None
    for _ in range(max(1, repeats)):
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus), result


def measure(
    method: str,
    threads: int,
    n_rows: int,
    fn: Callable[[], np.ndarray],
    repeats: int,
    *,
    reference: np.ndarray | None = None,
    te_seconds: float | None = None,
) -> tuple[Result, np.ndarray]:
    """Time ``fn`` and compare its values with ``reference`` (itself when ``None``)."""
    wall, cpu, values = median_time(fn, repeats)
    diff = max_diff(values, values if reference is None else reference)
    speedup = te_seconds / wall if te_seconds else None
    return Result(method, threads, n_rows, wall, cpu, diff, speedup), values


def pred_contribs(booster: xgb.Booster, X: np.ndarray, threads: int) -> np.ndarray:
    booster.set_param({"nthread": threads})
    return booster.predict(xgb.DMatrix(X, nthread=threads), pred_contribs=True)


def shap_tree_explainer(booster: xgb.Booster, threads: int) -> Any:
    import shap  # imported (and its import time excluded) before the timings start

    booster.set_param({"nthread": threads})  # TreeExplainer runs the booster's own kernel
    return shap.TreeExplainer(booster)


def with_bias(explainer: Any, values: np.ndarray) -> np.ndarray:
    """shap-style (values, expected_value) in pred_contribs layout: bias column last."""
    bias = float(np.asarray(explainer.expected_value).ravel()[0])
    return np.hstack([values, np.full((len(values), 1), bias)])


def fasttreeshap_installed() -> bool:
    try:
        import fasttreeshap  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        return False
    return True


def fast_tree_shap(booster: xgb.Booster, X: np.ndarray, threads: int) -> np.ndarray:
    """fasttreeshap's v2 algorithm (only when installed: it is not a dependency)."""
    import fasttreeshap  # type: ignore[import-not-found]

    explainer = fasttreeshap.TreeExplainer(booster, algorithm="v2", n_jobs=threads)
    # v2 compares in float64; rounding X to float32 first makes its splits match xgboost's
    return with_bias(explainer, explainer.shap_values(X.astype(np.float32)))


def max_diff(values: np.ndarray, reference: np.ndarray) -> float:
    n = min(len(values), len(reference))
    return float(np.abs(values[:n] - reference[:n]).max()) if n else 0.0


def compile_costs(model_path: Path) -> tuple[float, float]:
    """Kernel compile seconds in fresh processes: empty caches, then warm caches (best of 2).

    Python bytecode is cached too (under a temporary prefix), as in a normal installation; a
    machine with PYTHONDONTWRITEBYTECODE set pays about 0.5 s more per process for numba's own
    modules.
    """
    script = (
        "import json, sys\n"
        "from models.explain import TreeShapExplainer\n"
        "print(json.dumps(TreeShapExplainer(sys.argv[1]).compile_seconds))\n"
    )
    with tempfile.TemporaryDirectory() as folder:
        env = {
            **os.environ,
            "NUMBA_CACHE_DIR": str(Path(folder) / "numba"),
            "PYTHONPYCACHEPREFIX": str(Path(folder) / "pyc"),
        }
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        seconds = [
            float(
                subprocess.run(
                    [sys.executable, "-c", script, str(model_path)],
                    env=env,
                    check=True,
                    capture_output=True,
                    text=True,
                    cwd=REPO_ROOT,
                ).stdout.split()[-1]
            )
            for _ in range(3)
        ]
    return seconds[0], min(seconds[1:])


def describe_model(booster: xgb.Booster, args: argparse.Namespace) -> str:
    trees = json.loads(booster.save_raw("json"))["learner"]["gradient_booster"]["model"]["trees"]
    n_splits = sum(c >= 0 for tree in trees for c in tree["left_children"])
    n_leaves = sum(c < 0 for tree in trees for c in tree["left_children"])
    return (
        f"{args.trees} trees, depth {args.depth}, {args.features} features, "
        f"{n_splits:,} splits, {n_leaves:,} leaves, binary:logistic"
    )


def run(args: argparse.Namespace) -> tuple[list[Result], OneTimeCosts, str]:
    """Time every method on the same model and rows: results, one-time costs, model summary."""
    booster = train_model(args)
    first_call = TreeShapExplainer(booster).compile_seconds
    builds = [TreeShapExplainer(booster) for _ in range(max(1, args.repeats))]
    explainer = builds[-1]
    cold = warm = None
    if not args.skip_compile:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "model.json"
            booster.save_model(path)
            cold, warm = compile_costs(path)
    baseline_threads = max(args.threads)
    if not args.skip_slow:
        import shap  # noqa: F401  # keep its import time out of TreeExplainer's construction
    te_init = None
    results: list[Result] = []
    for n_rows in args.rows:
        X, _ = make_data(n_rows, args.features, seed=2)
        reference = te_seconds = None
        if not args.skip_slow:
            result, reference = measure(
                "xgboost pred_contribs",
                baseline_threads,
                n_rows,
                lambda X=X: pred_contribs(booster, X, baseline_threads),
                args.slow_repeats,
            )
            results.append(result)
            te_init, _, tree_explainer = median_time(
                lambda: shap_tree_explainer(booster, baseline_threads), args.slow_repeats
            )
            result, _ = measure(
                "shap.TreeExplainer",
                baseline_threads,
                n_rows,
                lambda X=X, te=tree_explainer: with_bias(te, te.shap_values(X)),
                args.slow_repeats,
                reference=reference,
            )
            te_seconds = result.seconds
            results.append(replace(result, speedup=1.0))
        if reference is None:
            reference = pred_contribs(booster, X[:DIFF_SAMPLE_ROWS], baseline_threads)
        for threads in args.threads:
            result, _ = measure(
                "TreeShapExplainer (ours)",
                threads,
                n_rows,
                lambda X=X, t=threads: explainer.shap_values(X, n_threads=t),
                args.repeats,
                reference=reference,
                te_seconds=te_seconds,
            )
            results.append(result)
        if fasttreeshap_installed() and not args.skip_slow:
            result, _ = measure(
                "fasttreeshap v2",
                baseline_threads,
                n_rows,
                lambda X=X: fast_tree_shap(booster, X, baseline_threads),
                args.slow_repeats,
                reference=reference,
                te_seconds=te_seconds,
            )
            results.append(result)
    costs = OneTimeCosts(
        build_seconds=statistics.median(e.build_seconds for e in builds),
        table_bytes=explainer.table_bytes,
        first_call_seconds=first_call,
        compile_cold_seconds=cold,
        compile_warm_seconds=warm,
        tree_explainer_init_seconds=te_init,
    )
    return results, costs, describe_model(booster, args)


def render(
    args: argparse.Namespace,
    results: list[Result],
    costs: OneTimeCosts,
    model_desc: str,
    load: tuple[float, float],
) -> str:
    """The results as a markdown report."""

    def fmt(value: float | None, spec: str, suffix: str = "") -> str:
        return "n/a" if value is None else format(value, spec) + suffix

    lines = [
        "# TreeSHAP benchmark",
        "",
        f"Model: {model_desc}. Machine: {os.cpu_count()} cores ({platform.machine()}), "
        f"Python {platform.python_version()}, xgboost {xgb.__version__}; 1-minute load "
        f"average {load[0]:.1f} before, {load[1]:.1f} after (other work on the machine inflates "
        "wall times).",
        f"Times are medians over repeats (ours: {args.repeats}, baselines: {args.slow_repeats}),"
        f" measured at every row count; baselines use {max(args.threads)} threads. "
        "TreeExplainer times are its shap_values call only (construction listed below). "
        "Diffs are against pred_contribs"
        + (f" (first {DIFF_SAMPLE_ROWS:,} rows)." if args.skip_slow else " (all rows)."),
        "",
        "| method | threads | rows | seconds | CPU seconds | rows/s | speed-up vs TreeExplainer "
        "| max abs diff vs pred_contribs |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r.method} | {r.threads} | {r.rows:,} | {r.seconds:.3f} | {r.cpu_seconds:.3f} "
        f"| {r.rows_per_second:,.0f} | {fmt(r.speedup, '.1f', 'x')} "
        f"| {fmt(r.max_abs_diff, '.1e')} |"
        for r in results
    ]
    if not fasttreeshap_installed():
        lines += ["", "fasttreeshap: not installed (skipped)."]
    warm = costs.compile_warm_seconds
    lines += [
        "",
        "One-time costs:",
        "",
        f"- table build (per model): {costs.build_seconds:.2f} s; tables "
        f"{costs.table_bytes / 2**20:.1f} MiB",
        f"- numba compile (per process), fresh process: cold cache "
        f"{fmt(costs.compile_cold_seconds, '.2f', ' s')}, warm cache {fmt(warm, '.2f', ' s')}; "
        f"first call in this process: {costs.first_call_seconds:.2f} s",
        "- shap.TreeExplainer construction: " + fmt(costs.tree_explainer_init_seconds, ".2f", " s"),
    ]
    first = min(args.rows)
    te = next((r for r in results if r.method == "shap.TreeExplainer" and r.rows == first), None)
    ours = [r for r in results if r.method == "TreeShapExplainer (ours)" and r.rows == first]
    if te and ours:
        best = min(ours, key=lambda r: r.seconds)
        compile_seconds, compile_kind = (
            (warm, "warm-cache compile")
            if warm is not None
            else (costs.first_call_seconds, "first-call compile in this process")
        )
        total = best.seconds + costs.build_seconds + compile_seconds
        lines.append(
            f"- ours at {first:,} rows ({best.threads} threads) including table build and "
            f"{compile_kind}: {total:.2f} s, {te.seconds / total:.1f}x TreeExplainer's shap_values"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> list[Result]:
    """Run the benchmark, print and write the markdown report; return the results."""
    args = parse_args(argv)
    load_before = os.getloadavg()[0]
    results, costs, model_desc = run(args)
    report = render(args, results, costs, model_desc, (load_before, os.getloadavg()[0]))
    print(report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report)
    print(f"written to {args.output}")
    return results


if __name__ == "__main__":
    main()
