"""Measurement helpers shared by the benchmarks."""

from __future__ import annotations

import threading

import psutil


class PeakRss:
    """Peak resident memory above the starting point while the block runs (sampled every 5 ms)."""

    def __enter__(self) -> PeakRss:
        self._process = psutil.Process()
        self.start = self._process.memory_info().rss
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self._process.memory_info().rss)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)

    @property
    def added_mib(self) -> float:
        return (self.peak - self.start) / 2**20
