"""The simulator's evaluation-only churn truth, read for the days a set of rows needs.

Truth files live at ``{landing_dir}/_evaluation/churn_truth/date=D/part-00000.parquet`` where
``D`` is the day the hazard was computed (its end). Label as-of ``A`` aligns with truth day
``A − 1`` (see ``models.metrics.truth_comparison``), so rows of as-of dates ``A₁ … Aₙ`` need
truth days ``A₁ − 1 … Aₙ − 1``. Real sources have no truth: then nothing is returned.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from pathlib import Path

import polars as pl

from lakehouse.landing import CHURN_TRUTH_COLUMNS, truth_path


def read_truth(landing_dir: Path, as_of_dates: Iterable[date]) -> pl.DataFrame | None:
    """Truth rows for the label as-of dates (days ``A − 1``), or None when none was written."""
    paths = [truth_path(landing_dir, day - timedelta(days=1)) for day in sorted(set(as_of_dates))]
    present = [p for p in paths if p.exists()]
    if not present:
        return None
    columns = list(CHURN_TRUTH_COLUMNS)
    return pl.concat(pl.read_parquet(p, columns=columns) for p in present)
