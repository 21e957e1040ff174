"""Evidence that the simulated lending world supports the credit model's quality bar.

Runs the production path on one simulated world: ``lakehouse.sources.lending.simulate`` →
bronze and silver (landing contract and the source's cross-feed business rules) → the
``credit`` spec's features and labels → a training set through the Feast feature service
(``build_training_set``) → ``models.training.train.train`` with the spec's design and
parameters. Then, on out-of-time rows (as-of dates after the training window) and against the
simulator's truth ``pd_12m`` on the same rows:

* pre-shock: a model trained on early as-of dates scores within 0.02 ROC-AUC of the truth;
* post-shock: that old model degrades against the truth, and a model retrained on a recent
  post-shock window closes at least half of the gap;
* 0 monotonicity violations of either model on a grid over every constrained feature;
* exact TreeSHAP (``models.explain``) within 1e-5 of xgboost's ``pred_contribs``.

Features are built for the feature days the sampled as-of dates need (``A − 1``), the same
builder and tables the daily assets fill. Figures go to ``benchmarks/results/credit_eval.md``.

    python benchmarks/eval_credit.py                 # 10,000 loans, 3 years (3-4 minutes)
    python benchmarks/eval_credit.py --small         # a short smoke run (no quality bar)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import xgboost as xgb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lakehouse.features.views import build_feature_batch  # noqa: E402
from lakehouse.ingest.delivery import check_delivery  # noqa: E402
from lakehouse.ingest.reader import read_batch  # noqa: E402
from lakehouse.ingest.tables import SourceTables  # noqa: E402
from lakehouse.sources.contract import evaluation_path  # noqa: E402
from lakehouse.sources.lending import EconomicShock, LendingConfig, simulate  # noqa: E402
from lakehouse.storage import Lakehouse  # noqa: E402
from models.explain import TreeShapExplainer  # noqa: E402
from models.metrics import roc_auc  # noqa: E402
from models.training.train import TrainedModel, predict, train  # noqa: E402
from models.usecase import UseCase, load_use_cases  # noqa: E402

DEFAULT_OUTPUT = ROOT / "benchmarks" / "results" / "credit_eval.md"
CHUNK_DAYS = 31
FEATURE_DAYS_PER_BUILD = 8
EVERY_DAYS = 7
GRID_POINTS = 25
GRID_ROWS = 300


@dataclass(frozen=True)
class Windows:
    """As-of date ranges (simulation days, inclusive) of the four row sets."""

    pre_train: tuple[int, int]
    pre_test: tuple[int, int]
    post_train: tuple[int, int]
    post_test: tuple[int, int]

    @classmethod
    def for_world(cls, days: int, shock: int, history: int) -> Windows:
        """Pre-shock rows whose 12-month windows end before the shock; post-shock rows whose
        windows start after it and have matured by the world's end. Each test window follows
        its training window by a week and covers its last ~25 % of as-of dates."""
        pre_last = shock - 365
        post_last = days - 365
        pre_split = history + (pre_last - history) * 3 // 4
        post_split = shock + (post_last - shock) * 3 // 4
        return cls(
            pre_train=(history, pre_split),
            pre_test=(pre_split + EVERY_DAYS, pre_last),
            post_train=(shock, post_split),
            post_test=(post_split + EVERY_DAYS, post_last),
        )


@dataclass(frozen=True)
class Evaluated:
    rows: int
    positives: int
    model: float
    truth: float
    default_rate: float
    mean_truth: float


def ingest(lake: Lakehouse, tables: SourceTables, landing: Path, days: Sequence[date]) -> None:
    """Bronze then silver, in chunks of days, as the ingest assets do (rules first)."""
    for start in range(0, len(days), CHUNK_DAYS):
        chunk = list(days[start : start + CHUNK_DAYS])
        check_delivery(lake, tables, landing, chunk)
        for feed in tables.feeds.values():
            frame = pl.concat([read_batch(landing, feed, day).frame for day in chunk])
            lake.replace(f"bronze.{feed.name}", frame, partition={"_batch_date": chunk})
        for flow in tables.flows.values():
            bronze = lake.read(flow.bronze, where=pl.col("_batch_date").is_in(chunk))
            lake.merge(flow.silver.name, flow.transform(bronze))


def build_features(lake: Lakehouse, use_case: UseCase, days: Sequence[date]) -> None:
    spec, created = use_case.features, datetime.now(UTC)
    for start in range(0, len(days), FEATURE_DAYS_PER_BUILD):
        chunk = list(days[start : start + FEATURE_DAYS_PER_BUILD])
        batch = build_feature_batch(
            spec.builder,
            lake,
            chunk,
            spec.views,
            spec.ratios,
            use_case.entity.join_key,
            created_at=created,
        )
        for name, frame in batch.tables.items():
            lake.replace(name, frame, partition={"feature_date": chunk})


def training_rows(lake: Lakehouse, use_case: UseCase, first_as_of: date) -> pl.DataFrame:
    from feature_repo.config import feature_store
    from lakehouse.features.training_set import build_training_set
    from orchestration.resources import FeatureStoreResource

    # feast apply of every use case, creating the (empty) tables never written here.
    FeatureStoreResource(lakehouse_uri=lake.uri).apply()
    built = build_training_set(
        lake,
        feature_store(lake.uri),
        labels=use_case.label.definition,
        spec=use_case.table_spec(use_case.tables.training_set),
        feature_service=use_case.features.service,
        first_as_of=first_as_of,
        every_days=EVERY_DAYS,
    )
    return built.frame


def with_truth(frame: pl.DataFrame, landing: Path, column: str) -> pl.DataFrame:
    """``frame`` with the truth computed at the end of ``as_of − 1`` (``models.metrics``)."""
    days = sorted(frame["as_of_date"].unique().to_list())
    truth = pl.concat(
        pl.read_parquet(evaluation_path(landing, "credit_truth", day - timedelta(days=1)))
        for day in days
    ).select("loan_id", (pl.col("as_of_date") + pl.duration(days=1)).alias("as_of_date"), column)
    return frame.join(truth, on=["loan_id", "as_of_date"], how="left")


def rows_between(frame: pl.DataFrame, start: date, window: tuple[int, int]) -> pl.DataFrame:
    first, last = (start + timedelta(days=d) for d in window)
    return frame.filter(pl.col("as_of_date").is_between(first, last))


def unseen_loans(rows: pl.DataFrame, model: TrainedModel, trained_on: pl.DataFrame) -> pl.DataFrame:
    """``rows`` of loans outside the training split of ``model`` (fitted on ``trained_on``)."""
    fitted = model.split.rows(trained_on, "train")["loan_id"].unique()
    return rows.filter(~pl.col("loan_id").is_in(fitted.implode()))


def evaluate(model: TrainedModel, use_case: UseCase, rows: pl.DataFrame) -> Evaluated:
    label = use_case.label.definition.column
    y = rows[label].to_numpy()
    scores = predict(model.booster, use_case.encoding, rows.drop("pd_12m"))
    truth = rows["pd_12m"].to_numpy()
    return Evaluated(
        rows=rows.height,
        positives=int(y.sum()),
        model=roc_auc(y, scores),
        truth=roc_auc(y, truth),
        default_rate=float(y.mean()),
        mean_truth=float(truth.mean()),
    )


def monotone_violations(
    booster: xgb.Booster, use_case: UseCase, rows: pl.DataFrame
) -> dict[str, int]:
    """Per constrained feature: rows whose prediction moves against the constraint anywhere on
    a grid of the feature's values (every other feature held at the row's values)."""
    encoding = use_case.encoding
    base = encoding.matrix(rows.sample(min(GRID_ROWS, rows.height), seed=0))
    names = encoding.names
    found = {}
    for feature, direction in use_case.design.monotone_constraints.items():
        column = names.index(feature)
        values = encoding.matrix(rows)[:, column]
        grid = np.unique(np.quantile(values[~np.isnan(values)], np.linspace(0, 1, GRID_POINTS)))
        grid = np.unique(np.concatenate([grid, [grid[0] - 1, grid[-1] * 2 + 1]]))
        stacked = np.repeat(base, len(grid), axis=0)
        stacked[:, column] = np.tile(grid, len(base))
        matrix = xgb.DMatrix(stacked, feature_names=names, missing=np.nan)
        margins = booster.predict(matrix, output_margin=True).reshape(len(base), len(grid))
        steps = np.diff(margins, axis=1) * direction
        found[feature] = int((steps < 0).any(axis=1).sum())
    return found


def shap_error(booster: xgb.Booster, use_case: UseCase, rows: pl.DataFrame) -> float:
    """Largest |TreeSHAP − pred_contribs| over the rows (margin space)."""
    matrix = use_case.encoding.matrix(rows)
    ours = TreeShapExplainer(booster).shap_values(matrix)
    dmatrix = xgb.DMatrix(matrix, feature_names=use_case.encoding.names, missing=np.nan)
    reference = booster.predict(dmatrix, pred_contribs=True)
    return float(np.abs(ours - reference).max())


def main(argv: Sequence[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loans", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=1095)
    parser.add_argument("--shock-day", type=int, default=540)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--small", action="store_true", help="600 loans, a short smoke run")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.small:
        args.loans, args.days, args.shock_day = 600, 900, 470
    work = args.workdir or Path(tempfile.mkdtemp(prefix="credit-eval-"))
    os.environ["SCOREHOUSE_HOME"] = str(work / "home")
    use_case = load_use_cases()["credit"]
    config = LendingConfig(
        loans=args.loans,
        days=args.days,
        seed=args.seed,
        shock=EconomicShock(day=args.shock_day),
    )
    history = use_case.training.history_days
    windows = Windows.for_world(args.days, args.shock_day, history)
    timings: dict[str, float] = {}

    started = time.perf_counter()
    landing = work / "landing"
    simulated = simulate(config, landing)
    timings["simulate"] = time.perf_counter() - started

    started = time.perf_counter()
    lake = load_use_cases().lakehouse(work / "lake")
    ingest(lake, use_case.source.tables, landing, [config.date_of(d) for d in range(args.days)])
    timings["ingest"] = time.perf_counter() - started

    started = time.perf_counter()
    last_as_of = args.days - 365
    as_of = [config.date_of(d) for d in range(history, last_as_of + 1, EVERY_DAYS)]
    build_features(lake, use_case, [day - timedelta(days=1) for day in as_of])
    definition = use_case.label.definition
    labels = use_case.label.builder.build(lake, definition, as_of)
    lake.replace(definition.table, labels, partition={"as_of_date": as_of})
    frame = training_rows(lake, use_case, as_of[0])
    frame = with_truth(frame, landing, "pd_12m")
    timings["features, labels, training set"] = time.perf_counter() - started

    started = time.perf_counter()
    sets = {
        name: rows_between(frame, config.start_date, getattr(windows, name))
        for name in ("pre_train", "pre_test", "post_train", "post_test")
    }
    feature_frame = {name: rows.drop("pd_12m") for name, rows in sets.items()}
    # The spec's parameters; a smoke run's world is too small for its row floor.
    params = replace(use_case.params, min_rows=100) if args.small else use_case.params
    old = train(feature_frame["pre_train"], use_case.design, params)
    new = train(feature_frame["post_train"], use_case.design, params)
    timings["train (2 models)"] = time.perf_counter() - started

    # Judge each model on loans it was not fitted on: a loan's 12-month outcome is shared by
    # its later as-of dates, which a model that saw the loan would simply recall.
    unseen = {
        "pre_test": unseen_loans(sets["pre_test"], old, feature_frame["pre_train"]),
        "post_test": unseen_loans(
            unseen_loans(sets["post_test"], new, feature_frame["post_train"]),
            old,
            feature_frame["pre_train"],
        ),
    }
    results = {
        "pre-shock, old model": evaluate(old, use_case, unseen["pre_test"]),
        "post-shock, old model": evaluate(old, use_case, unseen["post_test"]),
        "post-shock, retrained": evaluate(new, use_case, unseen["post_test"]),
    }
    violations = {
        "old": monotone_violations(old.booster, use_case, feature_frame["pre_test"]),
        "retrained": monotone_violations(new.booster, use_case, feature_frame["post_test"]),
    }
    shap = max(
        shap_error(old.booster, use_case, feature_frame["pre_test"]),
        shap_error(new.booster, use_case, feature_frame["post_test"]),
    )
    pre, post_old, post_new = results.values()
    gap_old, gap_new = post_old.truth - post_old.model, post_new.truth - post_new.model
    checks = {
        "pre-shock |model - truth| <= 0.02": abs(pre.truth - pre.model) <= 0.02,
        "old model degrades after the shock": gap_old > max(pre.truth - pre.model, 0.0),
        "retraining closes >= half the gap": gap_new <= gap_old / 2,
        "0 monotonicity violations": sum(sum(v.values()) for v in violations.values()) == 0,
        "TreeSHAP within 1e-5 of pred_contribs": shap <= 1e-5,
    }
    report = _markdown(args, config, simulated.rows, windows, timings, results, violations, shap)
    report += "\n" + "\n".join(
        f"* {'PASS' if ok else 'FAIL'}: {name}" for name, ok in checks.items()
    )
    report += (
        f"\n\nretrained model: best iteration {new.best_iteration}, old {old.best_iteration}\n"
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report)
    print(report)
    return {"results": results, "checks": checks, "violations": violations, "shap": shap}


def _markdown(
    args: argparse.Namespace,
    config: LendingConfig,
    rows: dict[str, int],
    windows: Windows,
    timings: dict[str, float],
    results: dict[str, Evaluated],
    violations: dict[str, dict[str, int]],
    shap: float,
) -> str:
    def span(window: tuple[int, int]) -> str:
        first, last = window
        return f"{config.date_of(first)}..{config.date_of(last)} (days {first}-{last})"

    lines = [
        f"# Credit world evaluation: {args.loans:,} loans, {args.days} days, shock on day "
        f"{args.shock_day} ({config.date_of(args.shock_day)}), seed {args.seed}",
        "",
        "Landing rows: " + ", ".join(f"{feed} {n:,}" for feed, n in rows.items()),
        "",
        "| step | seconds |",
        "| --- | ---: |",
        *(f"| {step} | {seconds:.1f} |" for step, seconds in timings.items()),
        "",
        "As-of windows (one date every 7 days): pre-shock train "
        f"{span(windows.pre_train)}, test {span(windows.pre_test)}; post-shock train "
        f"{span(windows.post_train)}, test {span(windows.post_test)}.",
        "",
        "| rows | n | positives | default rate | mean truth PD | model ROC-AUC | truth ROC-AUC |"
        " truth − model |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        *(
            f"| {name} | {r.rows:,} | {r.positives:,} | {r.default_rate:.3f} | "
            f"{r.mean_truth:.3f} | {r.model:.4f} | {r.truth:.4f} | {r.truth - r.model:+.4f} |"
            for name, r in results.items()
        ),
        "",
        "Monotonicity violations (rows of a grid over each constrained feature): "
        + "; ".join(f"{m}: {sum(v.values())}" for m, v in violations.items()),
        f"TreeSHAP vs pred_contribs: max |difference| {shap:.2e}",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
