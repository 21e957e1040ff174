"""Reads from the lakehouse and the registry that monitoring needs (no computation here).

The feature values of a scored day are re-read from ``features.*`` at the versions the scoring
run pinned (``source_versions`` of its ``ml.scoring_runs`` row): rows with
``feature_date == as_of_date`` are exactly what Feast's point-in-time join served (entity
timestamp midnight after the day). The two on-demand ratios are recomputed as
``feature_repo/churn.py``'s ``customer_ratios`` does.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Mapping
from datetime import date, timedelta

import numpy as np
import polars as pl

from lakehouse.errors import VersionNotAvailableError
from lakehouse.features import CHURN_V1_FEATURES, FEATURE_TABLES
from lakehouse.storage import Lakehouse
from lakehouse.tables import ML_PREDICTIONS, ML_SHADOW_PREDICTIONS
from models.registry import ModelRegistry
from models.training import TimeSplit, predict

POPULATION_TABLE = "features.customer_account"  # the scored population (models/scoring.py)
SCORE = "__score__"


def _all_predictions(lake: Lakehouse) -> pl.LazyFrame:
    """Served and shadow predictions together (shadow tables exist once a shadow run wrote)."""
    tables = [ML_PREDICTIONS.name, ML_SHADOW_PREDICTIONS.name]
    return pl.concat([lake.scan(t) for t in tables if lake.exists(t)], how="vertical")


def scored_runs(lake: Lakehouse, days: Iterable[date]) -> pl.DataFrame:
    """The current scoring run of each day per model alias (the latest finished one): the
    champion's served run and, beside it, any shadow (challenger) run."""
    days = list(days)
    runs = lake.scan("ml.scoring_runs").filter(pl.col("as_of_date").is_in(days))
    aliases = (
        _all_predictions(lake)
        .filter(pl.col("as_of_date").is_in(days))
        .select("scoring_run_id", "training_set_version")
        .unique()
    )
    return (
        runs.join(aliases, on="scoring_run_id")
        .sort("finished_at")
        .group_by("as_of_date", "model_alias")
        .agg(pl.all().last())
        .sort("as_of_date", "model_alias")
        .collect()
    )


def run_predictions(lake: Lakehouse, runs: pl.DataFrame) -> pl.DataFrame:
    """Predictions (customer, score, alias, version) of the given scoring runs."""
    ids = runs["scoring_run_id"].to_list()
    return (
        _all_predictions(lake)
        .filter(
            pl.col("as_of_date").is_in(runs["as_of_date"].unique().to_list())
            & pl.col("scoring_run_id").is_in(ids)
        )
        .select("as_of_date", "customer_id", "score", "model_alias", "model_version")
        .collect()
    )


def _read_day(lake: Lakehouse, table: str, day: date, version: int | None) -> pl.DataFrame:
    where = pl.col("feature_date") == day
    try:
        return lake.read(table, version=version, where=where)
    except VersionNotAvailableError:
        return lake.read(table, where=where)  # vacuumed pin: the latest is the best we have


def day_features(
    lake: Lakehouse, day: date, versions: Mapping[str, int] | None = None
) -> pl.DataFrame:
    """Every ``churn_v1`` feature of each customer of the scored population on ``day``."""
    versions = versions or {}
    frames = {t: _read_day(lake, t, day, versions.get(t)) for t in FEATURE_TABLES}
    joined = frames[POPULATION_TABLE].select("customer_id", *_features_of(POPULATION_TABLE))
    for table, frame in frames.items():
        if table != POPULATION_TABLE:
            joined = joined.join(
                frame.select("customer_id", *_features_of(table)), on="customer_id", how="left"
            )
    return with_ratios(joined)


def _features_of(table: str) -> list[str]:
    return [c for c in FEATURE_TABLES[table].schema if c in CHURN_V1_FEATURES]


def with_ratios(frame: pl.DataFrame) -> pl.DataFrame:
    """Add the on-demand ratios (null where the denominator is 0 or missing)."""
    attempts = pl.col("payment_attempts_90d").cast(pl.Float64)
    seats = pl.col("seats").cast(pl.Float64)
    return frame.with_columns(
        pl.when(attempts > 0)
        .then(pl.col("failed_payments_90d") / attempts)
        .alias("failed_payment_rate_90d"),
        pl.when(seats > 0).then(pl.col("tickets_30d") / seats).alias("tickets_per_seat_30d"),
    )


def pinned_versions(run: Mapping[str, object]) -> dict[str, int]:
    """The feature-table versions a scoring run read (its ``source_versions`` JSON)."""
    raw = run.get("source_versions") or "{}"
    return {str(k): int(v) for k, v in json.loads(str(raw)).items()}


def training_reference(
    lake: Lakehouse, version: int, *, sample_rows: int, seed: int = 0
) -> pl.DataFrame:
    """The ``ml.training_set`` rows the model was trained on (a seeded sample when larger)."""
    frame = lake.read("ml.training_set", version=version)
    return frame.sample(sample_rows, seed=seed) if frame.height > sample_rows else frame


def reference_scores(
    registry: ModelRegistry, model_version: str, training_set: pl.DataFrame
) -> np.ndarray:
    """The model's scores on its own out-of-time test rows (all rows when the split is unknown).

    Test rows were not fitted on, so their scores are what the model produces on unseen
    customers of its training period.
    """
    tags = registry.version(model_version).tags or {}
    rows = training_set
    with contextlib.suppress(KeyError, ValueError):  # no split tags: all rows
        rows = TimeSplit.from_tags(tags).rows(training_set, "test")
    return predict(registry.load_booster(model_version), rows if rows.height else training_set)


def shap_importance(lake: Lakehouse, run: Mapping[str, object]) -> dict[str, float]:
    """Mean |SHAP| per feature over the predictions of one scoring run."""
    shap = (
        lake.scan("ml.prediction_explanations")
        .filter(
            (pl.col("as_of_date") == run["as_of_date"])
            & (pl.col("scoring_run_id") == run["scoring_run_id"])
        )
        .select(pl.col(f"shap__{n}").abs().mean().alias(n) for n in CHURN_V1_FEATURES)
        .collect()
    )
    return {k: float(v) for k, v in shap.row(0, named=True).items() if v is not None}


def feature_row_counts(lake: Lakehouse, day: date, trailing_days: int) -> pl.DataFrame:
    """Rows per feature table per ``feature_date`` over ``day`` and the trailing days."""
    since = day - timedelta(days=trailing_days)
    frames = [
        lake.scan(table)
        .filter(pl.col("feature_date").is_between(since, day))
        .group_by("feature_date")
        .agg(pl.len().cast(pl.Int64).alias("rows"))
        .with_columns(pl.lit(table).alias("table"))
        .collect()
        for table in FEATURE_TABLES
    ]
    return pl.concat(frames).select("table", "feature_date", "rows")


def table_schemas(lake: Lakehouse) -> dict[str, pl.Schema]:
    """The stored schema of each feature table (as polars reads it)."""
    return {table: lake.scan(table).collect_schema() for table in FEATURE_TABLES}


def latest_feature_dates(lake: Lakehouse) -> dict[str, date | None]:
    """The newest ``feature_date`` of each feature table."""
    return {
        table: lake.scan(table).select(pl.col("feature_date").max()).collect().item()
        for table in FEATURE_TABLES
    }


def matured_labels(lake: Lakehouse, label_days: Iterable[date]) -> pl.DataFrame:
    """``labels.churn`` rows (customer, as-of, outcome) of the given as-of dates."""
    if not lake.exists("labels.churn"):
        return pl.DataFrame(
            schema={"customer_id": pl.String, "as_of_date": pl.Date, "churned_30d": pl.Int64}
        )
    return lake.read(
        "labels.churn",
        columns=["customer_id", "as_of_date", "churned_30d"],
        where=pl.col("as_of_date").is_in(list(label_days)),
    )
