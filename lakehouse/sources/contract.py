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
truth for evaluation only and must not be ingested as features.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
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


@dataclass(frozen=True)
class LandingSource:
    """One source system feed: its file format, typed columns and identity.

    ``key`` identifies a row version; rows with the same business id may appear again later
    (e.g. a ticket when opened and when resolved), so silver layers should upsert on the id and
    keep the row with the latest ``timestamp_column``. A feed without a timestamp column (a
    snapshot table) orders row versions by landing day, then by position in the file.
    """

    name: str
    file_format: FileFormat
    columns: Mapping[str, pl.DataType]
    key: tuple[str, ...]
    timestamp_column: str | None
    description: str
    nullable: frozenset[str] = frozenset()
    categories: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Read-only views so a shared contract cannot be mutated by a caller.
        object.__setattr__(self, "columns", MappingProxyType(dict(self.columns)))
        object.__setattr__(self, "categories", MappingProxyType(dict(self.categories)))
        named = set(self.key) | self.nullable | set(self.categories)
        if self.timestamp_column is not None:
            named.add(self.timestamp_column)
        unknown = named - set(self.columns)
        if unknown:
            raise ValueError(f"{self.name}: contract references unknown columns {sorted(unknown)}")

    @property
    def schema(self) -> pl.Schema:
        """The contract as a polars schema (column order is the file's column order)."""
        return pl.Schema(dict(self.columns))


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

    Only files with a known format extension count; temporary or hidden files are ignored.
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
        and path.suffix.lstrip(".") in FILE_FORMATS
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
