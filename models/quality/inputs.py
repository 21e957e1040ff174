"""What a suite validates: the table's rows (plus derived columns) and its run-time parameters.

* Row-count change: against the *previous* version — the newest version not written by the
  current Dagster run (a run may commit several times), or ``version − 1`` when the writer did
  not record run ids. No previous version: only the table's own minimum applies.
* Freshness: the latest value of the suite's freshness column must reach the last day of the
  partition range being built, minus the suite's lag; for a training set the reference is
  the latest matured label date of its label table. No reference: not evaluated (noted).
* Leakage columns of a training set (see ``suites.training_set``): the offset of
  ``event_timestamp`` from the as-of instant and, where the spec names a tenure feature, the
  entity's start date and ``(as_of_date − start) − tenure``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pandas as pd
import polars as pl

from lakehouse.storage import Lakehouse
from models.quality.suites import (
    EVENT_OFFSET,
    FRESH_SINCE,
    LEAKAGE_MARGIN,
    ROWS_FLOOR,
    ROWS_WARN_MAX,
    ROWS_WARN_MIN,
    SIGNUP_DATE,
    Leakage,
    TableSuite,
)

NOT_EVALUATED = date(1970, 1, 1)  # a freshness floor every table passes


@dataclass(frozen=True)
class ValidationInput:
    """A suite's batch and parameters, with the versions they were derived from."""

    frame: pl.DataFrame
    parameters: dict[str, Any]
    table_version: int
    previous_version: int | None
    previous_rows: int | None
    notes: tuple[str, ...] = ()


def previous_version(lake: Lakehouse, table: str, run_id: str | None) -> int | None:
    """The newest version written before ``run_id`` started writing (see module docstring)."""
    history = lake.history(table)
    current = int(history[0]["version"])
    own = [int(c["version"]) for c in history if run_id and c.get("dagster.run_id") == run_id]
    baseline = (min(own) if own else current) - 1
    return baseline if baseline >= 0 else None


def build_input(
    lake: Lakehouse,
    suite: TableSuite,
    *,
    run_id: str | None = None,
    partition_end: date | None = None,
) -> ValidationInput:
    """Read the table (latest version) and derive the suite's parameters."""
    version = lake.version(suite.table)
    if version is None:
        raise ValueError(f"{suite.table} was never written: nothing to validate")
    frame = lake.read(suite.table, version=version)
    notes: list[str] = []
    previous = previous_version(lake, suite.table, run_id)
    previous_rows = lake.row_count(suite.table, version=previous) if previous is not None else None
    parameters = _row_parameters(suite, previous_rows)
    if previous_rows is None:
        notes.append("row-count change not evaluated: no previous version")
    reference = partition_end
    if suite.leakage is not None:
        frame, leakage_notes = _with_leakage_columns(lake, frame, suite.leakage)
        notes += leakage_notes
    if suite.freshness_table is not None:
        reference = _latest_as_of(lake, suite.freshness_table)
    if reference is None:
        notes.append("freshness not evaluated: no partition range (or matured labels) to compare")
        since = NOT_EVALUATED
    else:
        since = reference - timedelta(days=suite.freshness.lag_days)
    parameters[FRESH_SINCE] = _pandas_value(since, frame.schema[suite.freshness.column])
    return ValidationInput(frame, parameters, version, previous, previous_rows, tuple(notes))


def _row_parameters(suite: TableSuite, previous: int | None) -> dict[str, Any]:
    change = suite.row_change
    minimum = change.min_rows
    if previous is None:
        return {ROWS_FLOOR: minimum, ROWS_WARN_MIN: minimum, ROWS_WARN_MAX: None}
    return {
        ROWS_FLOOR: max(minimum, math.ceil(previous * change.error_min_ratio)),
        ROWS_WARN_MIN: max(minimum, math.ceil(previous * change.warn_min_ratio)),
        ROWS_WARN_MAX: math.floor(previous * change.warn_max_ratio),
    }


def _pandas_value(day: date, dtype: pl.DataType) -> pd.Timestamp:
    """``day`` as the pandas value GX compares the column with (see ``runner.to_pandas``)."""
    if isinstance(dtype, pl.Datetime):
        return pd.Timestamp(day, tz=dtype.time_zone)
    return pd.Timestamp(day)


def _latest_as_of(lake: Lakehouse, table: str) -> date | None:
    if not lake.exists(table):
        return None
    return lake.scan(table).select(pl.col("as_of_date").max()).collect().item()


def _with_leakage_columns(
    lake: Lakehouse, frame: pl.DataFrame, leakage: Leakage
) -> tuple[pl.DataFrame, list[str]]:
    notes: list[str] = []
    as_of_instant = pl.col("as_of_date").cast(frame.schema["event_timestamp"])
    offset = (pl.col("event_timestamp") - as_of_instant).dt.total_seconds().alias(EVENT_OFFSET)
    if leakage.tenure is None:
        return frame.with_columns(offset), notes
    table, column, feature = (leakage.tenure[k] for k in ("table", "column", "feature"))
    key = leakage.join_key
    if lake.exists(table):
        starts = lake.read(table, columns=[key, column])
    else:
        notes.append(f"leakage not verifiable: {table} does not exist")
        starts = pl.DataFrame(schema={key: pl.String(), column: pl.Date()})
    derived = frame.join(starts.rename({column: SIGNUP_DATE}), on=key, how="left").with_columns(
        ((pl.col("as_of_date") - pl.col(SIGNUP_DATE)).dt.total_days() - pl.col(feature))
        .cast(pl.Int64)
        .alias(LEAKAGE_MARGIN),
        offset,
    )
    return derived, notes
