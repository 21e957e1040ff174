"""Putting your own files into the landing folder, in the layout of the landing contract.

``land_snapshot`` copies one file as the delivery of one day. ``land_events`` splits an event
log by the day of its timestamp column into one file per day, from the first day to the last
(days without events get an empty file: every delivered day has one file per feed). Each file is
validated against the feed's contract first (``lakehouse.ingest.reader.read_landing``) and
written atomically, so a bad file lands nowhere.
"""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

import polars as pl

from lakehouse.ingest.reader import LandingFileError, read_landing
from lakehouse.sources.contract import LandingSource, file_format_of, landing_path
from lakehouse.sources.writer import write_frame


def read_data_file(path: Path, feed: LandingSource, day: date) -> pl.DataFrame:
    """``path`` (any name, outside the landing folder) validated as ``feed``'s delivery of ``day``.

    Raises ``LandingFileError`` naming ``path`` itself, the column, the rule and the row count.
    """
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such data file")
    fmt = file_format_of(path)
    if fmt != feed.file_format:
        raise LandingFileError(
            path, [f"feed {feed.name} is declared {feed.file_format!r} (rule: feed format)"]
        )
    return read_landing(path, feed, day)


def land_snapshot(landing_dir: Path, feed: LandingSource, path: Path, day: date) -> Path:
    """Validate ``path`` against ``feed`` and copy it as the delivery of ``day``."""
    target = landing_path(landing_dir, feed, day)
    read_data_file(path, feed, day)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.tmp")
    shutil.copyfile(path, temporary)
    temporary.replace(target)
    return target


def land_events(
    landing_dir: Path, feed: LandingSource, path: Path, *, earliest: date | None = None
) -> list[Path]:
    """Validate ``path`` against ``feed`` and land it as one file per day of its timestamp.

    ``earliest``: the first day anything can ingest; events before it are refused (with the
    day found) rather than landed where no job would read them.
    """
    if feed.timestamp_column is None:
        raise ValueError(f"feed {feed.name} has no timestamp column to split deliveries by")
    # No event may lie in the future (the per-day files then hold only their day's events).
    frame = read_data_file(path, feed, date.today())
    column = pl.col(feed.timestamp_column)
    day = (
        column.dt.date() if isinstance(frame.schema[feed.timestamp_column], pl.Datetime) else column
    )
    frame = frame.with_columns(day.alias("_day"))
    first, last = frame["_day"].min(), frame["_day"].max()
    if first is None or last is None:
        raise ValueError(f"{path}: no events to land")
    assert isinstance(first, date) and isinstance(last, date)
    if earliest is not None and first < earliest:
        raise ValueError(
            f"{path}: events start on {first}, before the first daily partition {earliest}: "
            "set SCOREHOUSE_START_DATE (or the spec's source.start_date) to that day or earlier"
        )
    written = []
    current = first
    while current <= last:
        rows = frame.filter(pl.col("_day") == current).drop("_day")
        target = landing_path(landing_dir, feed, current)
        written.append(write_frame(rows, target, feed.file_format))
        current += timedelta(days=1)
    return written
