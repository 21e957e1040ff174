"""End-to-end batch scoring against its floor, measured in the same process.

End to end (``models.scoring.batch.score_day`` for the churn use case): population from
``features.customer_account``, feature retrieval through Feast (our Delta offline store, pinned
versions, feature service ``churn_v1``), ``inplace_predict``, exact TreeSHAP, reason codes, and
the Delta commits of the churn explanations, predictions and scoring-runs tables.

Floor: the same feature rows read from one Parquet file, ``inplace_predict``, exact TreeSHAP
with our kernel, scores and SHAP written to Parquet — the least any scoring must do.

    python benchmarks/bench_scoring.py                     # 1M customers
    python benchmarks/bench_scoring.py --customers 20000 --repeats 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import xgboost as xgb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.measure import PeakRss
from models.explain import TreeShapExplainer
from models.scoring.batch import ScoringModel, ScoringRun, pin_feature_versions, score_day
from models.scoring.policy import ScoringPolicy
from models.usecase import load_use_cases

DAY = date(2025, 6, 30)
CHURN = load_use_cases()["churn"]
ENCODING = CHURN.encoding
VOCABULARIES = dict(ENCODING.categories)
FEATURE_TABLES = {name: CHURN.table_spec(name) for name in CHURN.tables.feature_tables}


def synthetic_features(customers: int, seed: int = 0) -> dict[str, pl.DataFrame]:
    """One day of the four feature tables with plausible values and some nulls."""
    rng = np.random.default_rng(seed)
    ids = pl.Series("customer_id", [f"C{i:08d}" for i in range(customers)])
    stamp = datetime.combine(DAY + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    tables = {}
    for name, spec in FEATURE_TABLES.items():
        columns: dict[str, pl.Series] = {
            "customer_id": ids,
            "feature_date": pl.Series([DAY] * customers),
            "event_timestamp": pl.Series([stamp] * customers),
            "created_timestamp": pl.Series([stamp] * customers),
        }
        for column, dtype in spec.schema.items():
            if column in columns:
                continue
            if column in VOCABULARIES:
                columns[column] = pl.Series(rng.choice(VOCABULARIES[column], customers))
            elif dtype == pl.Int64():
                columns[column] = pl.Series(rng.poisson(3, customers).astype(np.int64))
            else:
                values = rng.gamma(2.0, 2.0, customers)
                values[rng.random(customers) < 0.05] = np.nan
                columns[column] = pl.Series(values, nan_to_null=True)
        tables[name] = pl.DataFrame(columns).select(
            [pl.col(c).cast(t) for c, t in spec.schema.items()]
        )
    return tables


def train_model(tables: dict[str, pl.DataFrame], trees: int, depth: int) -> xgb.Booster:
    """A ``trees``-tree model over the service's features, on a sample with a real signal."""
    sample = joined_features(tables).head(50_000)
    matrix = ENCODING.matrix(sample)
    rng = np.random.default_rng(1)
    logit = 0.4 * np.nan_to_num(matrix[:, 0]) - 0.3 * np.nan_to_num(matrix[:, 15]) - 2.0
    label = (rng.random(len(matrix)) < 1 / (1 + np.exp(-logit))).astype(np.float32)
    data = xgb.DMatrix(matrix, label=label, feature_names=ENCODING.names)
    params = {"objective": "binary:logistic", "max_depth": depth, "eta": 0.1, "nthread": 2}
    return xgb.train(params, data, num_boost_round=trees)


def joined_features(tables: dict[str, pl.DataFrame]) -> pl.DataFrame:
    frames = [
        t.drop("feature_date", "event_timestamp", "created_timestamp") for t in tables.values()
    ]
    joined = frames[0]
    for other in frames[1:]:
        joined = joined.join(other, on="customer_id")
    return joined.select("customer_id", *ENCODING.names)


def floor(parquet: Path, out: Path, booster: xgb.Booster, explainer: TreeShapExplainer) -> None:
    rows = pl.read_parquet(parquet)
    matrix = ENCODING.matrix(rows)
    scores = booster.inplace_predict(matrix)
    shap = explainer.shap_values(matrix)
    frame = pl.DataFrame({"customer_id": rows["customer_id"], "score": scores}).hstack(
        pl.DataFrame(shap, schema=[*ENCODING.names, "base_value"])
    )
    frame.write_parquet(out)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--trees", type=int, default=200)
    parser.add_argument("--depth", type=int, default=6)
    parser.add_argument("--chunk-rows", type=int, default=250_000)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "scoring.md"
    )
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="scorehouse-bench-") as tmp:
        root = Path(tmp)
        os.environ["SCOREHOUSE_HOME"] = str(root / "home")
        from feature_repo.config import apply, feature_store

        lake = load_use_cases().lakehouse(root / "lake")
        tables = synthetic_features(args.customers)
        for name, frame in tables.items():
            lake.append(name, frame)
        lake.create_if_missing(CHURN.tables.scoring.predictions)
        apply(str(root / "lake"))
        parquet = root / "features.parquet"
        joined_features(tables).write_parquet(parquet)
        del tables
        booster = train_model({n: lake.read(n) for n in FEATURE_TABLES}, args.trees, args.depth)
        model = ScoringModel("churn", "1", "champion", booster, "churn_v1", 0)
        policy = ScoringPolicy(chunk_rows=args.chunk_rows)

        build_started = time.perf_counter()
        explainer = TreeShapExplainer(booster)
        build = time.perf_counter() - build_started

        def end_to_end(i: int) -> None:
            versions = pin_feature_versions(lake, list(FEATURE_TABLES))
            run = ScoringRun(f"bench-{i}", DAY, "bench", "bench", versions, datetime.now(UTC))
            store = feature_store(str(root / "lake"), pins=versions)
            score_day(lake, store, CHURN, model, run, policy)

        results: dict[str, tuple[float, float]] = {}
        for name, action in [
            (
                "floor: Parquet → predict → TreeSHAP → Parquet",
                lambda i: floor(parquet, root / f"floor-{i}.parquet", booster, explainer),
            ),
            ("end to end: Feast → predict → TreeSHAP → reasons → Delta", end_to_end),
        ]:
            times, peaks = [], []
            for i in range(args.repeats):
                with PeakRss() as rss:
                    started = time.perf_counter()
                    action(i)
                    times.append(time.perf_counter() - started)
                peaks.append(rss.peak / 2**30)
            results[name] = (statistics.median(times), max(peaks))
            print(
                f"{name}: {results[name][0]:.1f} s, peak RSS {results[name][1]:.2f} GiB",
                file=sys.stderr,
                flush=True,
            )

    (floor_s, _), (e2e_s, e2e_peak) = results.values()
    lines = [
        f"### Batch scoring, {args.customers:,} customers, {args.trees} trees depth {args.depth}, "
        f"{len(ENCODING.names)} features ({len(CHURN.features.ratios)} ratios)",
        "",
        "| path | median s | rows/s | peak RSS GiB |",
        "|---|---:|---:|---:|",
        *(
            f"| {name} | {s:.2f} | {args.customers / s:,.0f} | {peak:.2f} |"
            for name, (s, peak) in results.items()
        ),
        "",
        f"end to end / floor: **{e2e_s / floor_s:.2f}×** (target ≤ 2×); peak {e2e_peak:.2f} GiB "
        f"(target ≤ 4 GiB); TreeSHAP build {build:.2f} s (once per model, not in either time).",
    ]
    report = "\n".join(lines)
    print(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("# Scoring benchmark\n\n" + report + "\n")
    return report


if __name__ == "__main__":
    main()
