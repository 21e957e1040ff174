"""The landing-file contract: which files a source system drops, where, and with which columns.

A source system delivers one or more *feeds* (``LandingSource``). A *landing folder* holds one
sub-folder per feed and one partition per calendar day::

    {landing_dir}/{feed}/date=YYYY-MM-DD/part-00000.{csv|jsonl|parquet}

Every delivered day has exactly one file per feed, possibly with zero rows, so the presence of a
partition means "this day was delivered". Text formats (CSV, JSON lines) carry timestamps as
ISO-8601 UTC strings with a ``Z`` suffix (``2025-01-31T09:15:00Z``) and dates as ``YYYY-MM-DD``;
Parquet carries proper ``Date`` / ``Datetime("us", "UTC")`` types. ``lakehouse.ingest.reader``
reads and validates any of the three formats into a frame with exactly the contract's dtypes.

Folders starting with ``_`` (e.g. ``_evaluation``) are never landing sources: they hold simulator
truth for evaluation only and must not be ingested as features. File extensions match without
regard to case (``part-00000.CSV`` is a CSV file).

Besides names and types, a contract states what values a business can produce, so that a file
breaking them is refused at landing rather than poisoning silver tables and features:

* identifier columns (``LandingSource.id_columns``) hold real ids: not empty, not a null literal
  such as ``NULL``, no surrounding whitespace, no control or zero-width characters;
* numeric columns are finite and lie inside their ``bounds`` (default: ``>= 0``, no upper bound);
* timestamps and dates lie no later than the delivery day plus ``future_tolerance``, except in
  ``future_columns`` (dates scheduled ahead by design, such as a billing period's end).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Literal

import polars as pl

FileFormat = Literal["csv", "jsonl", "parquet"]
FILE_FORMATS: tuple[FileFormat, ...] = ("csv", "jsonl", "parquet")


TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
DATE_FORMAT = "%Y-%m-%d"
PART_NAME = "part-00000"
EVALUATION_DIR = "_evaluation"

Bounds = tuple[float | None, float | None]
"""Inclusive ``(lowest, highest)`` allowed value of a numeric column; None: unbounded."""
DEFAULT_BOUNDS: Bounds = (0, None)
"""Numeric columns without explicit bounds: counts, amounts and durations are not negative."""
DEFAULT_FUTURE_TOLERANCE = timedelta(days=1)
"""How far past the end of its delivery day a landed timestamp may lie (clock skew, time zones
of the exporting system); anything later is a wrong clock or a wrong year."""


@dataclass(frozen=True)
class LandingSource:
    """One source system feed: its file format, typed columns, identity and allowed values.

    ``key`` identifies a row version; rows with the same business id may appear again later
    (e.g. a ticket when opened and when resolved), so silver layers should upsert on the id and
    keep the row with the latest ``timestamp_column``. A feed without a timestamp column (a
    snapshot table) orders row versions by landing day, then by position in the file.

    Attributes beyond the columns:
        nullable: columns that may be null (every other column is required).
        categories: column → vocabulary; values outside it are refused.
        bounds: numeric column → inclusive ``(low, high)``; either side None is unbounded.
            Columns not listed get ``DEFAULT_BOUNDS`` (``>= 0``).
        non_finite: float columns that may hold NaN or ±inf; every other float column must be
            finite (NaN in a price is never a price).
        ids: identifier columns besides the key's string columns and string columns named
            ``*_id`` (see ``id_columns``).
        future_tolerance: how far past the end of the delivery day a timestamp or date may lie.
        future_columns: temporal columns exempt from that rule because they are scheduled ahead
            by design (a billing period's end).
    """

    name: str
    file_format: FileFormat
    columns: Mapping[str, pl.DataType]
    key: tuple[str, ...]
    timestamp_column: str | None
    description: str
    nullable: frozenset[str] = frozenset()
    categories: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    bounds: Mapping[str, Bounds] = field(default_factory=dict)
    non_finite: frozenset[str] = frozenset()
    ids: frozenset[str] = frozenset()
    future_tolerance: timedelta = DEFAULT_FUTURE_TOLERANCE
    future_columns: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        # Read-only views so a shared contract cannot be mutated by a caller.
        object.__setattr__(self, "columns", MappingProxyType(dict(self.columns)))
        object.__setattr__(self, "categories", MappingProxyType(dict(self.categories)))
        object.__setattr__(self, "bounds", MappingProxyType(dict(self.bounds)))
        named = set(self.key) | self.nullable | set(self.categories) | set(self.bounds)
        named |= self.non_finite | self.ids | self.future_columns
        if self.timestamp_column is not None:
            named.add(self.timestamp_column)
        unknown = named - set(self.columns)
        if unknown:
            raise ValueError(f"{self.name}: contract references unknown columns {sorted(unknown)}")
        self._check_rules()

    def _check_rules(self) -> None:
        """Each value rule must fit its column's type, so no rule is silently ignored."""
        problems = [
            f"bounds of {c!r}: column is not numeric" for c in self.bounds if not self._numeric(c)
        ]
        problems += [
            f"bounds of {c!r}: low {low} > high {high}"
            for c, (low, high) in self.bounds.items()
            if low is not None and high is not None and low > high
        ]
        problems += [
            f"non_finite {c!r}: column is not a float column"
            for c in sorted(self.non_finite)
            if not self.columns[c].is_float()
        ]
        problems += [
            f"ids {c!r}: column is not a string column"
            for c in sorted(self.ids)
            if self.columns[c] != pl.String()
        ]
        problems += [
            f"future_columns {c!r}: column is not a date or timestamp"
            for c in sorted(self.future_columns)
            if not self.columns[c].is_temporal()
        ]
        if self.future_tolerance < timedelta(0):
            problems.append(f"future_tolerance {self.future_tolerance} is negative")
        if problems:
            raise ValueError(f"{self.name}: invalid contract: " + "; ".join(problems))

    def _numeric(self, column: str) -> bool:
        return self.columns[column].is_numeric()

    @property
    def schema(self) -> pl.Schema:
        """The contract as a polars schema (column order is the file's column order)."""
        return pl.Schema(dict(self.columns))

    @property
    def id_columns(self) -> tuple[str, ...]:
        """String columns holding identifiers: the key's, those named ``*_id``, and ``ids``."""
        return tuple(
            c
            for c, dtype in self.columns.items()
            if dtype == pl.String() and (c in self.key or c.endswith("_id") or c in self.ids)
        )

    def bounds_of(self, column: str) -> Bounds:
        """The inclusive bounds of a numeric column (``DEFAULT_BOUNDS`` unless declared)."""
        return self.bounds.get(column, DEFAULT_BOUNDS)


def partition_dir(landing_dir: Path, feed: str | LandingSource, day: date) -> Path:
    """The folder holding one feed's files for one day."""
    return Path(landing_dir) / _name(feed) / f"date={day.isoformat()}"


def landing_path(
    landing_dir: Path, feed: LandingSource, day: date, file_format: FileFormat | None = None
) -> Path:
    """Path of a feed's file for ``day``; the format defaults to the contract's format."""
    fmt = file_format or feed.file_format
    if fmt not in FILE_FORMATS:
        raise ValueError(f"unknown file format {fmt!r}; expected one of {FILE_FORMATS}")
    return partition_dir(landing_dir, feed, day) / f"{PART_NAME}.{fmt}"


def evaluation_path(landing_dir: Path, name: str, day: date) -> Path:
    """Path of an evaluation-only table (e.g. a simulator's truth) for ``day``, outside every
    landing feed (``_evaluation/<name>/date=D/part-00000.parquet``)."""
    return (
        Path(landing_dir)
        / EVALUATION_DIR
        / name
        / f"date={day.isoformat()}"
        / f"{PART_NAME}.parquet"
    )


def list_landing_files(
    landing_dir: Path, feed: str | LandingSource, day: date | None = None
) -> list[Path]:
    """Sorted data files of ``feed`` for ``day``, or for every delivered day when ``day`` is None.

    Only files with a known format extension count (in any case: ``.CSV`` is CSV); temporary
    or hidden files are ignored.
    """
    root = Path(landing_dir) / _name(feed)
    if day is None:
        folders = sorted(root.glob("date=*"))
    else:
        folders = [partition_dir(landing_dir, feed, day)]
    return sorted(
        path
        for folder in folders
        if folder.is_dir()
        for path in folder.iterdir()
        if path.is_file()
        and not path.name.startswith((".", "_"))
        and file_format_of(path) is not None
    )


def file_format_of(path: Path) -> FileFormat | None:
    """The format a file's extension names, in any case (``part-00000.CSV`` → ``csv``)."""
    suffix = path.suffix.lstrip(".").lower()
    return next((fmt for fmt in FILE_FORMATS if fmt == suffix), None)


def unrecognized_files(landing_dir: Path, feed: str | LandingSource, day: date) -> list[Path]:
    """Visible files of a day's partition whose extension names no known format."""
    folder = partition_dir(landing_dir, feed, day)
    if not folder.is_dir():
        return []
    return sorted(
        path
        for path in folder.iterdir()
        if path.is_file() and not path.name.startswith((".", "_")) and file_format_of(path) is None
    )


def delivered_days(landing_dir: Path, feed: str | LandingSource) -> list[date]:
    """Every day with a partition folder for ``feed``, oldest first."""
    root = Path(landing_dir) / _name(feed)
    return sorted(partition_date(folder / PART_NAME) for folder in root.glob("date=*"))


def partition_date(path: Path) -> date:
    """The ``date=YYYY-MM-DD`` partition a landing file belongs to."""
    return date.fromisoformat(path.parent.name.removeprefix("date="))


def _name(feed: str | LandingSource) -> str:
    return feed.name if isinstance(feed, LandingSource) else feed
