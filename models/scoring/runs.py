"""Which scoring run of a day is current: the latest finished one per as-of date and alias.

Every re-run appends; nothing is overwritten. The current run of a day is the one with the
latest ``finished_at`` in the scoring-runs table, per model alias (the champion's is served; a
shadow model's is compared with it).
"""

from __future__ import annotations

import polars as pl

from lakehouse.storage import Lakehouse
from models.scoring.tables import ScoringTables

SERVING_ALIAS = "champion"


def latest_runs(lake: Lakehouse, tables: ScoringTables) -> pl.LazyFrame:
    """One row per (as-of date, model alias): the latest finished run and its record."""
    return (
        lake.scan(tables.scoring_runs)
        .sort("finished_at")
        .group_by("as_of_date", "model_alias")
        .agg(pl.all().last())
    )


def current_predictions(lake: Lakehouse, tables: ScoringTables) -> pl.LazyFrame:
    """Predictions of the latest completed champion run of each as-of date (superseded runs
    stay in the predictions table as the audit record, but are not current)."""
    served = latest_runs(lake, tables).filter(pl.col("model_alias") == SERVING_ALIAS)
    return lake.scan(tables.predictions).join(
        served.select("as_of_date", "scoring_run_id"),
        on=["as_of_date", "scoring_run_id"],
        how="semi",
    )
