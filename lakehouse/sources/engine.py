"""Writing a simulated world's days into a landing folder: the loop every simulator shares.

A simulator provides its configuration (calendar, formats, the identity recorded with the
landing files), a world that steps one day at a time, its feeds and where its evaluation-only
truth goes; ``write_days`` claims the folder (``lakehouse.sources.claim``), simulates from day 0
in memory and writes the requested days: one file per feed and day (possibly with zero rows)
and, with ``write_truth``, the day's truth.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Protocol

import polars as pl

from lakehouse.sources.claim import claim_landing
from lakehouse.sources.contract import FileFormat, LandingSource, landing_path
from lakehouse.sources.writer import write_frame


class WorldConfig(Protocol):
    """What the loop needs of a simulator's configuration."""

    @property
    def days(self) -> int: ...

    def date_of(self, day: int) -> date: ...

    def file_format(self, feed: str) -> FileFormat: ...

    def identity(self) -> dict[str, Any]: ...


class DayFiles(Protocol):
    """One simulated day's output: a frame per feed and the evaluation-only truth."""

    @property
    def frames(self) -> Mapping[str, pl.DataFrame]: ...

    @property
    def truth(self) -> pl.DataFrame: ...


class SimulatedWorld(Protocol):
    def step(self, *, emit: bool) -> DayFiles | None: ...


@dataclass(frozen=True)
class SimulationResult:
    """Summary of one ``simulate`` call."""

    landing_dir: Path
    first_date: date
    last_date: date
    days_written: int
    files_written: int
    rows: dict[str, int] = field(default_factory=dict)  # per feed, summed over days
    truth_rows: int = 0


@dataclass(frozen=True)
class Simulator:
    """A simulated source system: its name (the landing claim's), feeds and truth location."""

    source: str
    feeds: Mapping[str, LandingSource]
    truth_path: Callable[[Path, date], Path]


def write_days(
    simulator: Simulator,
    config: WorldConfig,
    world: Callable[[], SimulatedWorld],
    landing_dir: Path,
    *,
    first_day: int,
    last_day: int | None,
    write_truth: bool,
    progress: Callable[[date], None] | None,
) -> SimulationResult:
    """Simulate days ``0..last_day`` and write days ``first_day..last_day`` (inclusive).

    Raises ``ValueError`` for a range outside the world and ``LandingClaimError`` for a folder
    holding files no simulator wrote or another recorded world, before anything is written.
    """
    last = config.days - 1 if last_day is None else last_day
    if not 0 <= first_day <= last < config.days:
        raise ValueError(
            f"need 0 <= first_day <= last_day < days={config.days}, got {first_day}..{last}"
        )
    landing_dir = Path(landing_dir)
    # Never over someone's own files, never a different world over a recorded one.
    claim_landing(landing_dir, simulator.source, simulator.feeds, config.identity())
    running = world()
    rows = dict.fromkeys(simulator.feeds, 0)
    files = truth_rows = 0
    for index in range(last + 1):
        output = running.step(emit=index >= first_day)
        if output is None:
            continue
        day = config.date_of(index)
        for feed, frame in output.frames.items():
            fmt = config.file_format(feed)
            write_frame(frame, landing_path(landing_dir, simulator.feeds[feed], day, fmt), fmt)
            rows[feed] += frame.height
            files += 1
        if write_truth:
            write_frame(output.truth, simulator.truth_path(landing_dir, day), "parquet")
            truth_rows += output.truth.height
            files += 1
        if progress is not None:
            progress(day)
    return SimulationResult(
        landing_dir=landing_dir,
        first_date=config.date_of(first_day),
        last_date=config.date_of(last),
        days_written=last - first_day + 1,
        files_written=files,
        rows=rows,
        truth_rows=truth_rows,
    )
