"""``simulate``: run a lending world from day 0 and write the requested days to a landing folder."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from lakehouse.sources.claim import claim_landing
from lakehouse.sources.contract import landing_path
from lakehouse.sources.lending.config import LendingConfig
from lakehouse.sources.lending.contract import LENDING_FEEDS, truth_path
from lakehouse.sources.lending.world import World
from lakehouse.sources.writer import write_frame


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


def simulate(
    config: LendingConfig,
    landing_dir: Path,
    *,
    first_day: int = 0,
    last_day: int | None = None,
    write_truth: bool = True,
    progress: Callable[[date], None] | None = None,
) -> SimulationResult:
    """Simulate days ``0..last_day`` and write days ``first_day..last_day`` (inclusive) to disk.

    The world is always simulated from day 0 in memory and every day's randomness derives from
    ``(seed, name, day)``, so the files of any day are identical whatever sub-range is
    requested. Each written day gets one file per feed (possibly with zero rows) and, with
    ``write_truth``, the evaluation-only truth under ``_evaluation/``. ``progress`` is called
    with each written date. Refuses (``LandingClaimError``) a folder holding files it did not
    write or another recorded world (``lakehouse.sources.claim``).
    """
    last = config.days - 1 if last_day is None else last_day
    if not 0 <= first_day <= last < config.days:
        raise ValueError(
            f"need 0 <= first_day <= last_day < days={config.days}, got {first_day}..{last}"
        )
    landing_dir = Path(landing_dir)
    # Never over someone's own files, never a different world over a recorded one.
    claim_landing(landing_dir, "lending", LENDING_FEEDS, config.identity())
    world = World(config)
    rows = dict.fromkeys(LENDING_FEEDS, 0)
    files = truth_rows = 0
    for index in range(last + 1):
        output = world.step(emit=index >= first_day)
        if output is None:
            continue
        for feed, frame in output.frames.items():
            fmt = config.file_format(feed)
            write_frame(
                frame, landing_path(landing_dir, LENDING_FEEDS[feed], output.date, fmt), fmt
            )
            rows[feed] += frame.height
            files += 1
        if write_truth:
            write_frame(output.truth, truth_path(landing_dir, output.date), "parquet")
            truth_rows += output.truth.height
            files += 1
        if progress is not None:
            progress(output.date)
    return SimulationResult(
        landing_dir=landing_dir,
        first_date=config.date_of(first_day),
        last_date=config.date_of(last),
        days_written=last - first_day + 1,
        files_written=files,
        rows=rows,
        truth_rows=truth_rows,
    )
