"""Small frames as markdown tables (Dagster metadata, reports and model cards render them)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import polars as pl


def markdown_table(frame: pl.DataFrame, columns: Sequence[str] | None = None) -> str:
    """``frame`` (its ``columns``, default all) as a markdown table; floats to 4 significant
    digits, missing values as ``–``; ``(none)`` for an empty frame."""
    cols = [c for c in (columns if columns is not None else frame.columns) if c in frame.columns]
    if not frame.height:
        return "(none)"

    def cell(value: object) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "–"
        if isinstance(value, float):
            return f"{value:.4g}"
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.select(cols).rows()]
    return "\n".join(lines)
