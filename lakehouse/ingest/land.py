"""Putting your own files into the landing folder, in the layout of the landing contract.

``land_snapshot`` copies one file as the delivery of one day. ``land_events`` splits an event
log by the day of its timestamp column into one file per day, from the first day to the last
(days without events get an empty file: every delivered day has one file per feed). Each file is
validated against the feed's contract first (``lakehouse.ingest.reader.read_landing``) and
written atomically, so a bad file lands nowhere.
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import date, timedelta
from pathlib import Path

import polars as pl

from lakehouse.ingest.reader import read_landing
from lakehouse.sources.contract import LandingSource, landing_path
from lakehouse.sources.writer import write_frame


def land_snapshot(landing_dir: Path, feed: LandingSource, path: Path, day: date) -> Path:
    """Validate ``path`` against ``feed`` and copy it as the delivery of ``day``."""
    target = landing_path(landing_dir, feed, day)
    with tempfile.TemporaryDirectory() as scratch:
        staged = Path(scratch) / target.name
        shutil.copyfile(path, staged)
        read_landing(staged, feed)  # raises LandingFileError naming the rule
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.tmp")
    shutil.copyfile(path, temporary)
    temporary.replace(target)
    return target


def land_events(landing_dir: Path, feed: LandingSource, path: Path) -> list[Path]:
    """Validate ``path`` against ``feed`` and land it as one file per day of its timestamp."""
    if feed.timestamp_column is None:
        raise ValueError(f"feed {feed.name} has no timestamp column to split deliveries by")
    with tempfile.TemporaryDirectory() as scratch:
        staged = Path(scratch) / f"part-00000.{feed.file_format}"
        shutil.copyfile(path, staged)
        frame = read_landing(staged, feed)
    column = pl.col(feed.timestamp_column)
    day = (
        column.dt.date() if isinstance(frame.schema[feed.timestamp_column], pl.Datetime) else column
    )
    frame = frame.with_columns(day.alias("_day"))
    first, last = frame["_day"].min(), frame["_day"].max()
    if first is None or last is None:
        raise ValueError(f"{path}: no events to land")
    assert isinstance(first, date) and isinstance(last, date)
    written = []
    current = first
    while current <= last:
        rows = frame.filter(pl.col("_day") == current).drop("_day")
        target = landing_path(landing_dir, feed, current)
        written.append(write_frame(rows, target, feed.file_format))
        current += timedelta(days=1)
    return written
