"""``scorehouse spec check --data``: does a data file fit a use case before anything lands?

The file is read with the feed's landing contract (every rule of ``lakehouse.ingest.reader``:
columns, types, nulls, vocabularies, bounds, unique key), and a snapshot's target must have both
outcomes: a constant target cannot train a classifier. Errors name the spec file, the field and
the rule.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl

from lakehouse.features.snapshot import ColumnLabel
from lakehouse.ingest.land import read_data_file
from models.usecase.load import SpecError
from models.usecase.spec import UseCase


def check_data(use_case: UseCase, path: Path, feed: str | None = None) -> int:
    """Validate ``path`` against the use case's (only, or named) feed; its row count."""
    feeds = use_case.source.tables.feeds
    spec_path = use_case.path or use_case.name
    if feed is None:
        if len(feeds) != 1:
            raise SpecError(spec_path, "source.feeds", f"name the feed of {path.name}")
        feed = next(iter(feeds))
    contract = feeds[feed]
    frame = read_data_file(path, contract, date.today())  # nothing dated in the future
    builder = use_case.label.builder
    if isinstance(builder, ColumnLabel) and builder.feed.name == feed:
        _check_target(use_case, frame, builder, path)
    return frame.height


def _check_target(use_case: UseCase, frame: pl.DataFrame, label: ColumnLabel, path: Path) -> None:
    spec_path = use_case.path or use_case.name
    field = "label.options.target"
    if label.target not in frame.columns:
        raise SpecError(spec_path, field, f"{path.name} has no column {label.target!r}")
    positives = int((frame[label.target].cast(pl.String) == str(label.positive)).sum())
    if positives in (0, frame.height):
        raise SpecError(
            spec_path,
            field,
            f"{path.name}: target {label.target!r} is constant ({positives} of {frame.height} "
            f"rows are {label.positive!r}; rule: both outcomes)",
        )
