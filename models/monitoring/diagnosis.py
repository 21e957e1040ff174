"""Pipeline health beside drift: is a moved distribution the world, or a broken pipeline?

Checks of the monitored day ``D`` (each row: check, subject, status ``ok``/``fault``, value,
expected, detail):

* ``row_count``: rows of each feature table on ``D`` vs the median of the trailing days
  (fault beyond ± ``row_count_tolerance``, e.g. half the customers missing);
* ``row_alignment``: every feature table has as many rows as the population table on ``D``
  (they are written from one frame; a difference is a partial write);
* ``null_rate``: a feature's null rate on ``D`` exceeds its training-reference rate by more
  than ``null_rate_jump`` (absolute) and by more than ``null_rate_sigmas`` standard errors of
  a rate over the day's rows (small days are noisy), e.g. a source column that stopped arriving;
* ``schema``: a feature table's stored columns or types differ from the catalog;
* ``freshness``: a feature table's newest ``feature_date`` is older than ``D``.

Verdict: ``pipeline_fault`` when any check faults (drift is then reported but not trusted),
else ``population_drift`` when a feature or the score drifted, else ``healthy``.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from datetime import date

import polars as pl

from lakehouse.catalog import TableSpec
from models.monitoring.policy import (
    FAULT,
    HEALTHY,
    OK,
    PIPELINE_FAULT,
    POPULATION_DRIFT,
    DiagnosisThresholds,
)
from models.monitoring.tables import DIAGNOSIS_CHECK_SCHEMA


def _check(
    check: str, subject: str, fault: bool, value: float, expected: float, detail: str
) -> dict[str, object]:
    return {
        "check": check,
        "subject": subject,
        "status": FAULT if fault else OK,
        "value": float(value),
        "expected": float(expected),
        "detail": detail,
    }


def row_count_checks(
    counts: pl.DataFrame, day: date, population_table: str, thresholds: DiagnosisThresholds
) -> list[dict[str, object]]:
    """``row_count`` and ``row_alignment`` of each table (``counts``: table, feature_date, rows)."""
    rows = []
    today = {
        t: int(n)
        for t, n in counts.filter(pl.col("feature_date") == day).select("table", "rows").iter_rows()
    }
    population = today.get(population_table, 0)
    for table in sorted(set(counts["table"]) | {population_table}):
        current = today.get(table, 0)
        history = counts.filter((pl.col("table") == table) & (pl.col("feature_date") < day))
        middle = history["rows"].median() if history.height else None
        median = float(middle) if isinstance(middle, int | float) else math.nan
        ratio = current / median if median else math.nan
        fault = not math.isnan(ratio) and abs(ratio - 1) > thresholds.row_count_tolerance
        detail = (
            f"{current} rows vs trailing {history.height}-day median {median:.0f} "
            f"({ratio - 1:+.0%})"
            if history.height
            else f"{current} rows, no trailing history"
        )
        rows.append(_check("row_count", table, fault, current, median, detail))
        rows.append(
            _check(
                "row_alignment",
                table,
                current != population,
                current,
                population,
                f"{current} rows vs {population} in {population_table}",
            )
        )
    return rows


def null_rate_checks(
    drift: pl.DataFrame, thresholds: DiagnosisThresholds, nullable: Collection[str] = ()
) -> list[dict[str, object]]:
    """``null_rate`` per feature from the drift rows' reference/current null rates.

    A feature the use case declares null by definition (``quality.nullable``: a mean over a
    window without events, a ratio over zero) may become null more often when the population
    changes: that is drift, reported as such, never a pipeline fault.
    """
    rows = []
    for row in drift.filter(pl.col("kind") != "score").iter_rows(named=True):
        ref, cur = row["reference_null_rate"], row["current_null_rate"]
        if ref is None or cur is None or math.isnan(ref) or math.isnan(cur):
            continue
        jump = cur - ref
        noise = thresholds.null_rate_sigmas * math.sqrt(
            ref * (1 - ref) / max(row["current_rows"], 1)
        )
        by_definition = row["feature"] in nullable
        detail = f"null rate {cur:.1%} vs {ref:.1%} in the training reference ({jump:+.1%})"
        if by_definition:
            detail += "; null by definition (quality.nullable): drift, not a fault"
        fault = not by_definition and jump > max(thresholds.null_rate_jump, noise)
        rows.append(_check("null_rate", row["feature"], fault, cur, ref, detail))
    return rows


def schema_checks(
    stored: Mapping[str, pl.Schema], specs: Mapping[str, TableSpec]
) -> list[dict[str, object]]:
    """``schema`` per table: stored columns and types vs the catalog's."""
    rows = []
    for table, schema in stored.items():
        want = specs[table].polars_schema
        problems = [f"missing {c}" for c in want if c not in schema]
        problems += [f"unexpected {c}" for c in schema if c not in want]
        problems += [
            f"{c} is {schema[c]}, catalog {want[c]}"
            for c in want
            if c in schema and schema[c] != want[c]
        ]
        detail = "; ".join(problems) or "matches the catalog"
        rows.append(_check("schema", table, bool(problems), len(problems), 0, detail))
    return rows


def freshness_checks(latest: Mapping[str, date | None], day: date) -> list[dict[str, object]]:
    """``freshness`` per table: days between the newest ``feature_date`` and ``day``."""
    rows = []
    for table, newest in latest.items():
        lag = (day - newest).days if newest is not None else math.inf
        detail = f"newest feature_date {newest} for partition {day}"
        rows.append(_check("freshness", table, lag > 0, lag, 0, detail))
    return rows


def diagnosis_frame(checks: list[dict[str, object]]) -> pl.DataFrame:
    """Checks as a frame, faults first."""
    frame = pl.DataFrame(checks, schema=DIAGNOSIS_CHECK_SCHEMA)
    return frame.sort(
        pl.col("status") == FAULT, "check", "subject", descending=[True, False, False]
    )


def verdict(diagnosis: pl.DataFrame, drift: pl.DataFrame) -> tuple[str, list[str]]:
    """``pipeline_fault`` / ``population_drift`` / ``healthy`` with its evidence lines."""
    faults = diagnosis.filter(pl.col("status") == FAULT)
    if faults.height:
        return PIPELINE_FAULT, [
            f"{r['check']} {r['subject']}: {r['detail']}" for r in faults.iter_rows(named=True)
        ]
    drifted = drift.filter(pl.col("status") != OK)
    if drifted.height:
        return POPULATION_DRIFT, [
            f"{r['feature']}: PSI {r['psi']:.3f} ({r['status']}), pipeline checks healthy"
            for r in drifted.iter_rows(named=True)
        ]
    return HEALTHY, ["no drift beyond thresholds, pipeline checks healthy"]
