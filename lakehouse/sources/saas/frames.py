"""SaaS frames: the shared frame helpers (``lakehouse.sources.frames``) bound to the SaaS
contract, customer ids and the calendar facts of a simulated day."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from lakehouse.sources.frames import (
    build_frame,
    day_date,
    identifier,
    label,
    numbered_id,
    padded,
    timestamp,
    where,
    yyyymmdd,
)
from lakehouse.sources.saas.contract import CHURN_TRUTH_COLUMNS, SAAS_FEEDS

__all__ = [
    "SECONDS_PER_DAY",
    "Day",
    "customer_id",
    "day_date",
    "identifier",
    "label",
    "padded",
    "source_frame",
    "timestamp",
    "truth_frame",
    "where",
    "yyyymmdd",
]

SECONDS_PER_DAY = 86_400
_EPOCH = date(1970, 1, 1)


@dataclass(frozen=True)
class Day:
    """One simulated day: its index (0 = start date) and calendar facts used by every module."""

    index: int
    date: date

    @property
    def epoch_day(self) -> int:
        """Days since 1970-01-01 (polars' Date representation)."""
        return (self.date - _EPOCH).days

    @property
    def midnight(self) -> int:
        """Epoch seconds of 00:00:00 UTC on this day."""
        return self.epoch_day * SECONDS_PER_DAY

    @property
    def weekday(self) -> int:
        """0 = Monday ... 6 = Sunday."""
        return self.date.weekday()


def customer_id(column: str, capacity: int) -> pl.Expr:
    """``C0000001``-style ids of the customer indices in ``column`` (index 0 is ``C0000001``)."""
    return numbered_id("C", column, capacity)


def source_frame(
    source: str,
    raw: Mapping[str, np.ndarray],
    columns: Mapping[str, pl.Expr],
    sort_by: Sequence[str] = (),
) -> pl.DataFrame:
    """A frame with exactly the contract's columns, order and dtypes for ``source``
    (``lakehouse.sources.frames.build_frame``)."""
    return build_frame(SAAS_FEEDS[source].columns, raw, columns, sort_by)


def truth_frame(raw: Mapping[str, np.ndarray], columns: Mapping[str, pl.Expr]) -> pl.DataFrame:
    """Like ``source_frame`` for the evaluation truth schema."""
    return build_frame(CHURN_TRUTH_COLUMNS, raw, columns, ())
