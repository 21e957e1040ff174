"""Which world a simulator wrote into a landing folder, so it never overwrites anything else.

A simulator *claims* a landing folder before its first write: it records the settings that
determine its world (seed, size, calendar, drift) in ``_simulated/<source>.json``. From then on

* it refuses to write into a folder whose feeds already hold files it did not write (your own
  data: run the jobs with ``SCOREHOUSE_SIMULATE=0``, which leaves the simulator out of them);
* it refuses to write a *different* world over the recorded one (same settings, or another
  folder); and
* whoever re-runs a job can read the recorded world back (``recorded_world``), so a re-run
  outside the demo simulates exactly the world the folder holds.

The record excludes how many days were simulated: a world's days are the same whatever range
is written, so extending it is not a different world.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from lakehouse.errors import LakehouseError

RECORD_DIR = "_simulated"


class LandingClaimError(LakehouseError):
    """A simulator may not write into this landing folder; the message says why and what to do."""


def record_path(landing_dir: Path, source: str) -> Path:
    """Where the world simulated for ``source`` is recorded."""
    return Path(landing_dir) / RECORD_DIR / f"{source}.json"


def recorded_world(landing_dir: Path, source: str) -> dict[str, Any] | None:
    """The world recorded for ``source`` in ``landing_dir``, or None if none was."""
    path = record_path(landing_dir, source)
    if not path.is_file():
        return None
    return dict(json.loads(path.read_text())["world"])


def claim_landing(
    landing_dir: Path, source: str, feeds: Iterable[str], world: Mapping[str, Any]
) -> None:
    """Allow a simulator of ``source`` to write ``world``'s ``feeds`` into ``landing_dir``.

    Raises ``LandingClaimError`` when the feeds hold files no simulator recorded, or when the
    recorded world differs from ``world`` (naming each differing setting).
    """
    landing_dir = Path(landing_dir)
    world = json.loads(json.dumps(dict(world), default=str))  # as it reads back from the file
    recorded = recorded_world(landing_dir, source)
    if recorded is not None:
        differing = sorted(k for k in set(recorded) | set(world) if recorded.get(k) != world.get(k))
        if differing:
            changes = "; ".join(
                f"{k}: recorded {recorded.get(k)!r}, asked {world.get(k)!r}" for k in differing
            )
            raise LandingClaimError(
                f"landing folder {landing_dir} holds another simulated {source} world ({changes}); "
                "simulate it with its recorded settings, or use another SCOREHOUSE_HOME / "
                "SCOREHOUSE_LANDING_DIR for a new world"
            )
        return
    foreign = _files_of(landing_dir, feeds)
    if foreign:
        raise LandingClaimError(
            f"landing folder {landing_dir} already holds {len(foreign)} file(s) of "
            f"{source} feeds that no simulator wrote (e.g. {foreign[0]}); refusing to overwrite "
            "them. To run the jobs on these files, set SCOREHOUSE_SIMULATE=0 (the jobs then "
            "read the landing folder and never simulate); to simulate, use another "
            "SCOREHOUSE_HOME or SCOREHOUSE_LANDING_DIR"
        )
    _write_atomically(record_path(landing_dir, source), {"source": source, "world": world})


def _files_of(landing_dir: Path, feeds: Iterable[str]) -> list[Path]:
    found: list[Path] = []
    for feed in feeds:
        folder = landing_dir / feed
        if folder.is_dir():
            found += sorted(p for p in folder.rglob("*") if p.is_file())
    return found


def _write_atomically(path: Path, payload: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(handle, "w") as out:
        json.dump(payload, out, indent=2, sort_keys=True)
    os.replace(temporary, path)
