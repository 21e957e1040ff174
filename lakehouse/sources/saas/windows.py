"""Per-customer rolling windows over the last N simulated days, O(customers) per day.

The hazard only sees what the landing files show, so windows cover simulated days only: before
day 0 nothing is observed.
"""

from __future__ import annotations

from collections import deque

import numpy as np


class RollingSums:
    """Sums of a daily per-customer integer series over the last ``w`` days, for each window w.

    Keeps a ring buffer of ``max(windows)`` days; integer sums stay exact (no float drift).
    """

    def __init__(
        self, capacity: int, windows: tuple[int, ...] = (7, 30), dtype: type = np.int32
    ) -> None:
        if not windows or min(windows) < 1:
            raise ValueError("windows must be positive day counts")
        self._length = max(windows)
        self._ring: np.ndarray = np.zeros((self._length, capacity), dtype=dtype)
        self.sums = {window: np.zeros(capacity, dtype=np.int64) for window in windows}

    def push(self, day: int, values: np.ndarray) -> None:
        """Record ``values`` (one per customer) for ``day``; days must be pushed in order."""
        values = values.astype(np.int64)
        for window, total in self.sums.items():
            # Slot of day-window: still in the ring for short windows, today's slot for the
            # longest (holding day-length), which is overwritten below.
            total += values - self._ring[(day - window) % self._length]
        self._ring[day % self._length] = values


class RollingCounts:
    """Per-customer count of events over the last ``window`` days, from sparse event lists."""

    def __init__(self, capacity: int, window: int = 30) -> None:
        self.counts = np.zeros(capacity, dtype=np.int32)
        self._days: deque[np.ndarray] = deque()
        self._window = window

    def push(self, customers: np.ndarray) -> None:
        """Record today's events (customer index per event; repeats allowed). Call once a day."""
        np.add.at(self.counts, customers, 1)
        self._days.append(customers)
        if len(self._days) > self._window:
            np.subtract.at(self.counts, self._days.popleft(), 1)
