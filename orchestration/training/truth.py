"""A simulator's evaluation-only truth, read for the days a set of rows needs.

Truth files live at ``{landing_dir}/_evaluation/<truth>/date=D/part-00000.parquet`` where ``D``
is the day the truth was computed (its end). Label as-of ``A`` aligns with truth day ``A − 1``
(see ``models.metrics.truth_comparison``), so rows of as-of dates ``A₁ … Aₙ`` need truth days
``A₁ − 1 … Aₙ − 1``. Real sources have no truth: then nothing is returned.
"""

from collections.abc import Iterable
from datetime import date, timedelta
from pathlib import Path

import polars as pl

from lakehouse.sources.contract import evaluation_path
from models.usecase.spec import Evaluation


def read_truth(
    landing_dir: Path, evaluation: Evaluation, key: str, as_of_dates: Iterable[date]
) -> pl.DataFrame | None:
    """Truth rows for the label as-of dates (days ``A − 1``), or None when none was written."""
    days = sorted(set(as_of_dates))
    paths = [
        evaluation_path(landing_dir, evaluation.truth, day - timedelta(days=1)) for day in days
    ]
    present = [p for p in paths if p.exists()]
    if not present:
        return None
    columns = [key, "as_of_date", evaluation.column]
    return pl.concat(pl.read_parquet(p, columns=columns) for p in present)
