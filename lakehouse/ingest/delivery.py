"""Cross-feed business rules: a delivery (every feed of a source for a run's days) is checked
as a whole, against itself and against what silver already holds, before anything is written.

Contract rules (``reader``) look at one file at a time; some rules span feeds — a repayment
must belong to a known loan, an application must precede its loan's first repayment. A source
declares them as ``SourceTables.checks``; ``check_delivery`` reads and validates every feed of
the days, runs each check and raises ``DeliveryError`` listing every problem (each naming the
file, the column, the rule and the row count), so bronze never receives part of a delivery that
breaks a rule.

Every bronze asset of a run checks the same delivery before it writes; a delivery found clean
is remembered for the process by its fingerprint (a digest of each file's path and bytes and
of the version of every silver table of the source; the newest 64 are kept), so the next asset
of the run parses and validates its files once, not again for the rules. Anything that changes
a file or silver checks it again; a delivery that broke a rule is never remembered.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path

import polars as pl

from lakehouse.errors import LakehouseError
from lakehouse.ingest.reader import read_batch
from lakehouse.ingest.tables import SourceTables
from lakehouse.sources.contract import list_landing_files
from lakehouse.storage import Lakehouse

SOURCE_FILE = "_source_file"


class DeliveryError(LakehouseError):
    """A delivery broke a cross-feed business rule; nothing of it may be written."""

    def __init__(self, source: str, days: Sequence[date], problems: list[str]) -> None:
        self.source, self.days, self.problems = source, sorted(days), problems
        span = f"{self.days[0]}" if len(self.days) == 1 else f"{self.days[0]}..{self.days[-1]}"
        super().__init__(f"delivery of source {source} for {span} rejected: " + "; ".join(problems))


def read_delivery(
    landing_dir: Path, tables: SourceTables, days: Sequence[date], feeds: Iterable[str]
) -> dict[str, pl.DataFrame]:
    """The validated rows of ``days`` (``reader.read_batch`` rules apply) of ``feeds``."""
    return {
        name: pl.concat(
            [read_batch(landing_dir, tables.feeds[name], day).frame for day in sorted(days)]
        )
        for name in feeds
    }


def check_delivery(
    lake: Lakehouse, tables: SourceTables, landing_dir: Path, days: Sequence[date]
) -> None:
    """Run the source's cross-feed rules on the delivery of ``days``; raise ``DeliveryError``.

    Only the feeds the rules name are read; a source without rules costs nothing.
    """
    if not tables.checks or not days:
        return
    feeds = sorted({feed for rule in tables.checks for feed in rule.feeds})
    fingerprint = _fingerprint(lake, tables, landing_dir, days, feeds)
    if fingerprint in _CLEAN:
        return
    frames = read_delivery(landing_dir, tables, days, feeds)
    problems = [problem for rule in tables.checks for problem in rule.check(lake, frames)]
    if problems:
        raise DeliveryError(tables.name, days, problems)
    _CLEAN[fingerprint] = None
    while len(_CLEAN) > _REMEMBERED:  # a long-lived code server keeps only the newest
        del _CLEAN[next(iter(_CLEAN))]


_CLEAN: dict[str, None] = {}
"""Fingerprints of the deliveries found clean in this process, oldest first."""
_REMEMBERED = 64


def _fingerprint(
    lake: Lakehouse,
    tables: SourceTables,
    landing_dir: Path,
    days: Sequence[date],
    feeds: Iterable[str],
) -> str:
    """A digest of what the rules' verdict depends on: the files of ``feeds`` on ``days``
    (each path and its bytes: hashing is cheap beside parsing) and the version of each silver
    table the rules compare against."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(repr((lake.uri, tables.name, sorted(days))).encode())
    for feed in feeds:
        for day in sorted(days):
            for path in list_landing_files(landing_dir, feed, day):
                data = path.read_bytes()  # length-prefixed: no two file lists hash alike
                for part in (str(path).encode(), data):
                    digest.update(len(part).to_bytes(8, "big") + part)
    versions = [(name, lake.version(name)) for name in sorted(tables.silver)]
    digest.update(repr(versions).encode())
    return digest.hexdigest()


def files_of(rows: pl.DataFrame) -> str:
    """``file (n rows), …`` of the delivery rows ``rows`` (their ``_source_file``)."""
    counts = rows.group_by(SOURCE_FILE).len().sort(SOURCE_FILE)
    return ", ".join(
        f"{name} ({n} row{'s' if n != 1 else ''})"
        for name, n in zip(counts[SOURCE_FILE], counts["len"], strict=True)
    )
