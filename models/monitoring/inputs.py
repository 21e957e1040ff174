"""Reads from the lakehouse and the registry that monitoring needs (no computation here).

The feature values of a scored day are re-read from the use case's feature tables at the
versions the scoring run pinned (``source_versions`` of its scoring-run record): rows with
``feature_date == as_of_date`` are exactly what Feast's point-in-time join served (entity
timestamp midnight after the day).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Mapping
from datetime import date, timedelta

import numpy as np
import polars as pl

from lakehouse.errors import VersionNotAvailableError
from lakehouse.features.views import FEATURE_DATE
from lakehouse.storage import Lakehouse
from models.lifecycle.registry import ModelRegistry
from models.scoring.runs import latest_runs
from models.scoring.tables import SHAP_PREFIX
from models.training.params import split_from_tags
from models.training.train import predict
from models.usecase.spec import UseCase


def _all_predictions(lake: Lakehouse, use_case: UseCase) -> pl.LazyFrame:
    """Served and shadow predictions together (shadow tables exist once a shadow run wrote)."""
    tables = use_case.tables.scoring
    names = [tables.predictions, tables.shadow_predictions]
    return pl.concat([lake.scan(t) for t in names if lake.exists(t)], how="vertical")


def scored_runs(lake: Lakehouse, use_case: UseCase, days: Iterable[date]) -> pl.DataFrame:
    """The current scoring run of each day per model alias (the latest finished one): the
    champion's served run and, beside it, any shadow (challenger) run."""
    days = list(days)
    training_sets = (
        _all_predictions(lake, use_case)
        .filter(pl.col("as_of_date").is_in(days))
        .select("scoring_run_id", "training_set_version")
        .unique()
    )
    return (
        latest_runs(lake, use_case.tables.scoring)
        .filter(pl.col("as_of_date").is_in(days))
        .join(training_sets, on="scoring_run_id")
        .sort("as_of_date", "model_alias")
        .collect()
    )


def run_predictions(lake: Lakehouse, use_case: UseCase, runs: pl.DataFrame) -> pl.DataFrame:
    """Predictions (entity, score, alias, version) of the given scoring runs."""
    ids = runs["scoring_run_id"].to_list()
    return (
        _all_predictions(lake, use_case)
        .filter(
            pl.col("as_of_date").is_in(runs["as_of_date"].unique().to_list())
            & pl.col("scoring_run_id").is_in(ids)
        )
        .select("as_of_date", use_case.entity.join_key, "score", "model_alias", "model_version")
        .collect()
    )


def _read_day(lake: Lakehouse, table: str, day: date, version: int | None) -> pl.DataFrame:
    where = pl.col(FEATURE_DATE) == day
    try:
        return lake.read(table, version=version, where=where)
    except VersionNotAvailableError:
        return lake.read(table, where=where)  # vacuumed pin: the latest is the best we have


def day_features(
    lake: Lakehouse, use_case: UseCase, day: date, versions: Mapping[str, int] | None = None
) -> pl.DataFrame:
    """Every feature of the service for each entity of the scored population on ``day``."""
    versions = versions or {}
    key, wanted = use_case.entity.join_key, use_case.features.features
    population = use_case.features.population_table

    def features_of(table: str) -> list[str]:
        return [c for c in use_case.table_spec(table).schema if c in wanted]

    frames = {t: _read_day(lake, t, day, versions.get(t)) for t in use_case.tables.feature_tables}
    joined = frames[population].select(key, *features_of(population))
    for table, frame in frames.items():
        if table != population:
            joined = joined.join(frame.select(key, *features_of(table)), on=key, how="left")
    return joined


def pinned_versions(run: Mapping[str, object]) -> dict[str, int]:
    """The feature-table versions a scoring run read (its ``source_versions`` JSON)."""
    raw = run.get("source_versions") or "{}"
    return {str(k): int(v) for k, v in json.loads(str(raw)).items()}


def training_reference(
    lake: Lakehouse, use_case: UseCase, version: int, *, sample_rows: int, seed: int = 0
) -> pl.DataFrame:
    """The training-set rows the model was trained on (a seeded sample when larger)."""
    frame = lake.read(use_case.tables.training_set, version=version)
    return frame.sample(sample_rows, seed=seed) if frame.height > sample_rows else frame


def reference_scores(
    registry: ModelRegistry, use_case: UseCase, model_version: str, training_set: pl.DataFrame
) -> np.ndarray:
    """The model's scores on its own test rows (all rows when the split is unknown).

    Test rows were not fitted on, so their scores are what the model produces on unseen
    entities of its training period.
    """
    tags = registry.version(model_version).tags or {}
    rows = training_set
    with contextlib.suppress(KeyError, ValueError):  # no split tags: all rows
        rows = split_from_tags(tags).rows(training_set, "test")
    booster = registry.load_booster(model_version)
    return predict(booster, use_case.encoding, rows if rows.height else training_set)


def shap_importance(
    lake: Lakehouse, use_case: UseCase, run: Mapping[str, object]
) -> dict[str, float]:
    """Mean |SHAP| per feature over the predictions of one scoring run."""
    shap = (
        lake.scan(use_case.tables.scoring.explanations)
        .filter(
            (pl.col("as_of_date") == run["as_of_date"])
            & (pl.col("scoring_run_id") == run["scoring_run_id"])
        )
        .select(pl.col(f"{SHAP_PREFIX}{n}").abs().mean().alias(n) for n in use_case.encoding.names)
        .collect()
    )
    return {k: float(v) for k, v in shap.row(0, named=True).items() if v is not None}


def feature_row_counts(
    lake: Lakehouse, use_case: UseCase, day: date, trailing_days: int
) -> pl.DataFrame:
    """Rows per feature table per ``feature_date`` over ``day`` and the trailing days."""
    since = day - timedelta(days=trailing_days)
    frames = [
        lake.scan(table)
        .filter(pl.col(FEATURE_DATE).is_between(since, day))
        .group_by(FEATURE_DATE)
        .agg(pl.len().cast(pl.Int64).alias("rows"))
        .with_columns(pl.lit(table).alias("table"))
        .collect()
        for table in use_case.tables.feature_tables
    ]
    return pl.concat(frames).select("table", FEATURE_DATE, "rows")


def table_schemas(lake: Lakehouse, use_case: UseCase) -> dict[str, pl.Schema]:
    """The stored schema of each feature table (as polars reads it)."""
    return {table: lake.scan(table).collect_schema() for table in use_case.tables.feature_tables}


def latest_feature_dates(lake: Lakehouse, use_case: UseCase) -> dict[str, date | None]:
    """The newest ``feature_date`` of each feature table."""
    return {
        table: lake.scan(table).select(pl.col(FEATURE_DATE).max()).collect().item()
        for table in use_case.tables.feature_tables
    }


def matured_labels(lake: Lakehouse, use_case: UseCase, label_days: Iterable[date]) -> pl.DataFrame:
    """Label rows (entity, as-of, outcome) of the given as-of dates."""
    definition = use_case.label.definition
    columns = [definition.join_key, "as_of_date", definition.column]
    if not lake.exists(definition.table):
        schema = definition.spec().polars_schema
        return pl.DataFrame(schema={c: schema[c] for c in columns})
    return lake.read(
        definition.table, columns=columns, where=pl.col("as_of_date").is_in(list(label_days))
    )
