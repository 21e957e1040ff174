"""Named, reproducible random streams derived from (seed, stream name, day).

Each day and each purpose gets its own generator, so a day's draws never depend on how many
numbers another day or another purpose consumed. That is what makes a partial run reproduce a
full run, and lets emission-only details be skipped on days that are not written.
"""

from __future__ import annotations

import zlib

import numpy as np


def stream(seed: int, name: str, day: int | None = None) -> np.random.Generator:
    """Generator for ``name`` on ``day`` (``None`` for draws made once, before day 0)."""
    # crc32 rather than hash(): Python salts str hashes per process.
    entropy = [seed, zlib.crc32(name.encode())] + ([] if day is None else [day])
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy)))


def choice_rows(rng: np.random.Generator, weights: np.ndarray) -> np.ndarray:
    """One categorical draw per row of non-negative ``weights`` (shape ``(n, k)``, unnormalised).

    Returns the chosen column index per row.
    """
    cumulative = np.cumsum(weights, axis=1)
    draws = rng.random(len(weights))[:, None] * cumulative[:, -1:]
    return np.minimum((draws >= cumulative).sum(axis=1), weights.shape[1] - 1)
