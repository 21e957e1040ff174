"""Matured-label evidence from shadow scoring: champion and challenger on the same entities.

A challenger shadow-scored beside the champion (the use case's shadow predictions table) is
judged on the vintages whose labels have matured: for each scoring day ``D`` the latest champion
run and the latest challenger run of that day, joined on the entity and on the label that judges
``D`` (as of ``D + 1``, see ``docs/monitoring.md``).
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from lakehouse.storage import Lakehouse
from models.monitoring.performance import LABEL_LAG_DAYS
from models.scoring.runs import SERVING_ALIAS, latest_runs
from models.usecase.spec import UseCase


def matured_shadow_rows(
    lake: Lakehouse, use_case: UseCase, champion_version: str, challenger_version: str
) -> pl.DataFrame:
    """Rows scored by both versions whose label matured: as_of_date, the entity key, the label,
    ``champion_score`` and ``challenger_score`` (empty when there are none yet)."""
    key, label = use_case.entity.join_key, use_case.label.definition.column
    tables = use_case.tables
    columns = {
        "as_of_date": pl.Date(),
        key: pl.String(),
        label: pl.Int64(),
        "champion_score": pl.Float64(),
        "challenger_score": pl.Float64(),
    }
    needed = (
        tables.scoring.scoring_runs,
        tables.scoring.predictions,
        tables.scoring.shadow_predictions,
        tables.labels,
    )
    if not all(lake.exists(t) for t in needed):
        return pl.DataFrame(schema=columns)
    latest = latest_runs(lake, tables.scoring)

    def scores(table: str, alias: pl.Expr, version: str, name: str) -> pl.LazyFrame:
        runs = latest.filter(alias & (pl.col("model_version") == version)).select("scoring_run_id")
        return (
            lake.scan(table)
            .join(runs, on="scoring_run_id", how="semi")
            .select("as_of_date", key, pl.col("score").alias(name))
        )

    labels = lake.scan(tables.labels).select(
        (pl.col("as_of_date") - timedelta(days=LABEL_LAG_DAYS)).alias("as_of_date"), key, label
    )
    served = pl.col("model_alias") == SERVING_ALIAS
    return (
        scores(tables.scoring.predictions, served, champion_version, "champion_score")
        .join(
            scores(
                tables.scoring.shadow_predictions, ~served, challenger_version, "challenger_score"
            ),
            on=["as_of_date", key],
        )
        .join(labels, on=["as_of_date", key])
        .select(list(columns))
        .sort("as_of_date", key)
        .collect()
    )
