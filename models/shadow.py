"""Matured-label evidence from shadow scoring: champion and challenger on the same customers.

A challenger shadow-scored beside the champion (``ml.shadow_predictions``) is judged on the
vintages whose labels have matured: for each scoring day ``D`` the latest champion run and the
latest challenger run of that day, joined on customer and on the label that judges ``D``
(``labels.churn`` as of ``D + 1``, see ``docs/monitoring.md``).
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from lakehouse.storage import Lakehouse
from models.encoding import LABEL
from models.monitoring.performance import LABEL_LAG_DAYS
from models.registry import CHAMPION


def matured_shadow_rows(
    lake: Lakehouse, champion_version: str, challenger_version: str
) -> pl.DataFrame:
    """Rows scored by both versions whose label matured: as_of_date, customer_id, the label,
    ``champion_score`` and ``challenger_score`` (empty when there are none yet)."""
    columns = {
        "as_of_date": pl.Date(),
        "customer_id": pl.String(),
        LABEL: pl.Int64(),
        "champion_score": pl.Float64(),
        "challenger_score": pl.Float64(),
    }
    tables = ("ml.scoring_runs", "ml.predictions", "ml.shadow_predictions", "labels.churn")
    if not all(lake.exists(t) for t in tables):
        return pl.DataFrame(schema=columns)
    latest = (
        lake.scan("ml.scoring_runs")
        .sort("finished_at")
        .group_by("as_of_date", "model_alias")
        .agg(pl.col("scoring_run_id").last(), pl.col("model_version").last())
    )

    def scores(table: str, alias: pl.Expr, version: str, name: str) -> pl.LazyFrame:
        runs = latest.filter(alias & (pl.col("model_version") == version)).select("scoring_run_id")
        return (
            lake.scan(table)
            .join(runs, on="scoring_run_id", how="semi")
            .select("as_of_date", "customer_id", pl.col("score").alias(name))
        )

    labels = lake.scan("labels.churn").select(
        (pl.col("as_of_date") - timedelta(days=LABEL_LAG_DAYS)).alias("as_of_date"),
        "customer_id",
        LABEL,
    )
    served = pl.col("model_alias") == CHAMPION
    return (
        scores("ml.predictions", served, champion_version, "champion_score")
        .join(
            scores("ml.shadow_predictions", ~served, challenger_version, "challenger_score"),
            on=["as_of_date", "customer_id"],
        )
        .join(labels, on=["as_of_date", "customer_id"])
        .select(list(columns))
        .sort("as_of_date", "customer_id")
        .collect()
    )
