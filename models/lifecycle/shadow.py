"""Matured-label evidence from shadow scoring: champion and shadow model on the same rows.

Every daily scoring run scores the day with the champion (served) and with the model in shadow
(the shadow tables), from the same pinned feature versions, one scoring-runs record each.
A shadow run is *paired* with the champion run of the same Dagster run and day; for each day
the latest paired runs count. Its rows are joined on the entity with the champion's and with
the label that judges the day (as of ``D + 1``, ``docs/monitoring.md``), once it has matured.
"""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from lakehouse.features.views import FEATURE_DATE
from lakehouse.storage import Lakehouse
from models.monitoring.performance import LABEL_LAG_DAYS
from models.scoring.runs import SERVING_ALIAS
from models.usecase.spec import UseCase

VALUE = "value"


def paired_runs(lake: Lakehouse, use_case: UseCase, shadow_version: str) -> pl.DataFrame:
    """Per day: the latest shadow run of ``shadow_version`` and the champion run of the same
    Dagster run (as_of_date, shadow_run_id, champion_run_id, champion_version)."""
    table = use_case.tables.scoring.scoring_runs
    schema = {
        "as_of_date": pl.Date(),
        "shadow_run_id": pl.String(),
        "champion_run_id": pl.String(),
        "champion_version": pl.String(),
    }
    if not lake.exists(table):
        return pl.DataFrame(schema=schema)
    runs = lake.scan(table).select(
        "scoring_run_id",
        "as_of_date",
        "dagster_run_id",
        "model_alias",
        "model_version",
        "finished_at",
    )
    served = pl.col("model_alias") == SERVING_ALIAS
    shadow = runs.filter(~served & (pl.col("model_version") == shadow_version))
    champion = runs.filter(served).select(
        "as_of_date",
        "dagster_run_id",
        pl.col("scoring_run_id").alias("champion_run_id"),
        pl.col("model_version").alias("champion_version"),
    )
    return (
        shadow.join(champion, on=["as_of_date", "dagster_run_id"])
        .sort("finished_at")
        .group_by("as_of_date")
        .agg(pl.all().last())
        .select(
            "as_of_date",
            pl.col("scoring_run_id").alias("shadow_run_id"),
            "champion_run_id",
            "champion_version",
        )
        .sort("as_of_date")
        .collect()
    )


def matured_shadow_rows(
    lake: Lakehouse,
    use_case: UseCase,
    champion_version: str | None,
    shadow_version: str,
    *,
    value_feature: str | None = None,
    since: date | None = None,
    until: date | None = None,
) -> pl.DataFrame:
    """Rows scored by both models in paired runs whose label matured: as_of_date, the entity
    key, the label, ``champion_score``, ``challenger_score`` (the shadow model's) and ``value``
    (the ``value_feature`` of the entity that day, else 1). ``champion_version`` None: any
    champion the shadow model was paired with; ``since``: from that scoring day on; ``until``:
    only the labels matured by the end of that day (the data clock: outcomes ingested ahead of
    it are not known yet)."""
    key, label = use_case.entity.join_key, use_case.label.definition.column
    tables = use_case.tables
    columns = {
        "as_of_date": pl.Date(),
        key: pl.String(),
        label: pl.Int64(),
        "champion_score": pl.Float64(),
        "challenger_score": pl.Float64(),
        VALUE: pl.Float64(),
    }
    needed = (tables.scoring.predictions, tables.scoring.shadow_predictions, tables.labels)
    if not all(lake.exists(t) for t in needed):
        return pl.DataFrame(schema=columns)
    runs = paired_runs(lake, use_case, shadow_version)
    if champion_version is not None:
        runs = runs.filter(pl.col("champion_version") == champion_version)
    if since is not None:
        runs = runs.filter(pl.col("as_of_date") >= since)
    if runs.is_empty():
        return pl.DataFrame(schema=columns)
    days = runs["as_of_date"].to_list()

    def scores(table: str, ids: pl.Series, name: str) -> pl.LazyFrame:
        return (
            lake.scan(table)
            .filter(pl.col("as_of_date").is_in(days) & pl.col("scoring_run_id").is_in(ids))
            .select("as_of_date", key, pl.col("score").alias(name))
        )

    labels = lake.scan(tables.labels)
    if until is not None:  # the label of as-of A is written by partition A + maturity − 1
        maturity = use_case.label.definition.maturity_days
        labels = labels.filter(pl.col("as_of_date") <= until - timedelta(days=maturity - 1))
    labels = labels.select(
        (pl.col("as_of_date") - timedelta(days=LABEL_LAG_DAYS)).alias("as_of_date"), key, label
    )
    joined = (
        scores(tables.scoring.predictions, runs["champion_run_id"], "champion_score")
        .join(
            scores(tables.scoring.shadow_predictions, runs["shadow_run_id"], "challenger_score"),
            on=["as_of_date", key],
        )
        .join(labels, on=["as_of_date", key])
    )
    if value_feature is None:
        joined = joined.with_columns(pl.lit(1.0).alias(VALUE))
    else:
        values = _values(lake, use_case, value_feature, days)
        joined = joined.join(values, on=["as_of_date", key], how="left")
    frame = joined.select(list(columns)).sort("as_of_date", key).collect()
    return frame.cast(columns)  # type: ignore[arg-type]


def _values(lake: Lakehouse, use_case: UseCase, feature: str, days: list[date]) -> pl.LazyFrame:
    """The business value feature of each entity on each day."""
    key = use_case.entity.join_key
    table = next(
        t for t in use_case.tables.feature_tables if feature in use_case.table_spec(t).schema
    )
    return (
        lake.scan(table)
        .filter(pl.col(FEATURE_DATE).is_in(days))
        .select(
            pl.col(FEATURE_DATE).alias("as_of_date"),
            key,
            pl.col(feature).cast(pl.Float64).alias(VALUE),
        )
    )
