"""GX suites on ml.training_set: a clean set passes; each kind of defect is caught and shown."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
import pytest

from lakehouse.storage import Lakehouse
from models.quality import CRITICAL, WARNING, build_input, data_docs_dir, suites, validate
from models.quality.inputs import previous_version
from models.quality.runner import ValidationReport
from models.usecase import project_lakehouse
from tests.models.synthetic import CHURN, SyntheticData

TABLE = CHURN.tables.training_set


def _run(lake: Lakehouse, run_id: str | None = None) -> ValidationReport:
    suite = suites(CHURN)[TABLE]()
    batch = build_input(lake, suite, run_id=run_id)
    return validate(suite, batch.frame, batch.parameters)


def _failed(report: ValidationReport, severity: str) -> dict[tuple[str, str | None], object]:
    return {(o.expectation, o.column): o for o in report.of(severity) if not o.success}


def test_clean_training_set_passes(lake: Lakehouse) -> None:
    report = _run(lake)
    assert report.errors_passed, _failed(report, CRITICAL)
    assert report.warnings_passed, _failed(report, WARNING)
    assert report.docs_page is not None and report.docs_page.is_file()
    assert report.docs_page.is_relative_to(data_docs_dir())


def test_defects_fail_the_critical_suite_with_bad_rows(synthetic: SyntheticData) -> None:
    frame = synthetic.training_set
    first = frame["as_of_date"].min()
    bad = frame.with_columns(
        # Leakage: the first as-of date's rows carry features of their as-of day.
        pl.when(pl.col("as_of_date") == first)
        .then(pl.col("tenure_days") + 1)
        .otherwise(pl.col("tenure_days"))
        .alias("tenure_days"),
        pl.when(pl.col("customer_id") == "c000003")
        .then(pl.lit("platinum"))
        .otherwise(pl.col("plan"))
        .alias("plan"),
    )
    duplicate = (
        bad.filter(pl.col("as_of_date") > first)
        .head(1)
        .with_columns(pl.lit(2, dtype=pl.Int64).alias("churned_30d"))
    )
    lake = project_lakehouse()
    lake.merge("silver.customers", synthetic.customers)
    lake.append(TABLE, bad)
    lake.append(TABLE, duplicate)  # the key repeats across appends: only GX can see it
    report = _run(lake)
    failed = _failed(report, CRITICAL)
    leakage = failed[("expect_column_values_to_be_between", "_leakage_margin_days")]
    assert leakage.unexpected_count == 200  # every customer on the first as-of date
    assert leakage.sample and leakage.sample[0]["_leakage_margin_days"] == 0
    assert leakage.sample[0]["as_of_date"].startswith(first.isoformat())
    assert failed[("expect_column_values_to_be_in_set", "plan")].unexpected_count == 120
    assert failed[("expect_column_values_to_be_in_set", "churned_30d")].unexpected_count == 1
    assert ("expect_compound_columns_to_be_unique", None) in failed


def test_row_count_drop_against_the_previous_version(lake: Lakehouse) -> None:
    full = lake.read(TABLE)
    last = full["as_of_date"].max()
    lake.replace(TABLE, full.filter(pl.col("as_of_date") > last - timedelta(days=30)))
    assert previous_version(lake, TABLE, run_id=None) == 0
    report = _run(lake)
    failed = _failed(report, CRITICAL)
    [drop] = [o for (name, _), o in failed.items() if name.endswith("row_count_to_be_between")]
    assert drop.observed == 200 * 30
    assert drop.arguments["min_value"] == pytest.approx(full.height * 0.5)


def test_previous_version_skips_this_runs_own_commits(lake: Lakehouse) -> None:
    from lakehouse.commit import CommitInfo

    frame = lake.read(TABLE)
    lake.replace(TABLE, frame, commit=CommitInfo(run_id="run-b"))
    lake.replace(TABLE, frame, commit=CommitInfo(run_id="run-b"))
    assert previous_version(lake, TABLE, run_id="run-b") == 0
    assert previous_version(lake, TABLE, run_id="another") == 1
