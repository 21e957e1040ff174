"""The lending source's cross-feed business rules refuse a bad delivery as a whole — naming the
file, column, rule and row count — before anything is written; a clean delivery passes."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from dagster import DagsterInstance, materialize
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from lakehouse.ingest.delivery import DeliveryError, check_delivery
from lakehouse.ingest.lending import LENDING
from lakehouse.ingest.reader import LandingFileError, read_landing
from lakehouse.sources.contract import landing_path
from lakehouse.sources.lending import LendingConfig
from lakehouse.sources.lending.contract import LENDING_FEEDS
from lakehouse.sources.writer import write_frame
from lakehouse.storage import Lakehouse
from models.usecase import project_lakehouse
from orchestration.ingest.assets import source_assets
from orchestration.resources import LakehouseResource, LandingResource
from tests.credit_world import credit, lending_world

INGESTED = 50  # days 0..49 are in silver; days 50..99 are the delivery under test
DAYS = 100


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[LendingConfig, Path, Lakehouse]:
    root = tmp_path_factory.mktemp("lending")
    config, lake = lending_world(root, loans=400, days=DAYS, seed=9, ingested_days=INGESTED)
    return config, root / "landing", lake


@pytest.fixture
def delivery(
    world: tuple[LendingConfig, Path, Lakehouse], tmp_path: Path
) -> tuple[Path, list[date]]:
    """A copy of the delivery's landing partitions (safe to tamper with) and its days."""
    config, landing, _ = world
    days = [config.date_of(d) for d in range(INGESTED, DAYS)]
    copy = tmp_path / "landing"
    for feed in LENDING_FEEDS.values():
        for day in days:
            source = landing_path(landing, feed, day).parent
            shutil.copytree(source, copy / source.relative_to(landing))
    return copy, days


def _rows(landing: Path, feed: str, day: date) -> pl.DataFrame:
    return read_landing(landing_path(landing, LENDING_FEEDS[feed], day), LENDING_FEEDS[feed])


def _rewrite(
    landing: Path, feed: str, day: date, change: Callable[[pl.DataFrame], pl.DataFrame]
) -> str:
    """Rewrite one landing file; returns its name as the error messages show it."""
    spec = LENDING_FEEDS[feed]
    path = landing_path(landing, spec, day)
    write_frame(change(read_landing(path, spec)), path, spec.file_format)
    return f"{feed}/date={day}/{path.name}"


def _repay_an_unknown_loan(landing: Path, days: list[date]) -> str:
    """Add a repayment of loan L9999999 to the first day with repayments; the file's name."""
    day = next(d for d in days if _rows(landing, "repayments", d).height)
    return _rewrite(
        landing,
        "repayments",
        day,
        lambda f: pl.concat([f, f.head(1).with_columns(pl.lit("L9999999").alias("loan_id"))]),
    )


def _rejected(lake: Lakehouse, landing: Path, days: list[date]) -> str:
    with pytest.raises(DeliveryError) as info:
        check_delivery(lake, LENDING, landing, days)
    message = str(info.value)
    assert message.startswith(f"delivery of source lending for {days[0]}..{days[-1]} rejected: ")
    return message


def _all_rows(landing: Path, feed: str, days: list[date]) -> pl.DataFrame:
    return pl.concat([_rows(landing, feed, day) for day in days])


def test_a_clean_delivery_passes(world: tuple[LendingConfig, Path, Lakehouse]) -> None:
    config, landing, lake = world
    check_delivery(lake, LENDING, landing, [config.date_of(d) for d in range(INGESTED, DAYS)])
    # The fixture ingested days 0..49 through the same rules, chunk by chunk.
    assert lake.read("silver.repayments").height > 0


def test_a_term_outside_the_product_catalogue(
    world: tuple[LendingConfig, Path, Lakehouse], delivery: tuple[Path, list[date]]
) -> None:
    _, _, lake = world
    landing, days = delivery
    day = next(d for d in days if _rows(landing, "loans", d).height >= 2)
    name = _rewrite(
        landing,
        "loans",
        day,
        lambda f: f.with_columns(
            pl.when(pl.int_range(pl.len()) < 2)
            .then(48)
            .otherwise("term_months")
            .alias("term_months")
        ),
    )
    message = _rejected(lake, landing, days)
    assert (
        f"{name} (2 rows): column 'term_months': 2 rows with terms [48] outside the product "
        "catalogue [36, 60] (rule: product catalogue)"
    ) in message


def test_a_repayment_of_an_unknown_loan(
    world: tuple[LendingConfig, Path, Lakehouse], delivery: tuple[Path, list[date]]
) -> None:
    _, _, lake = world
    landing, days = delivery
    name = _repay_an_unknown_loan(landing, days)
    message = _rejected(lake, landing, days)
    assert (
        f"{name} (1 row): column 'loan_id': 1 rows for loans neither in silver.loans nor booked "
        "in this delivery (rule: repayment of a known loan; e.g. 'L9999999')"
    ) in message


def test_a_delivery_found_clean_is_checked_again_once_a_file_changes(
    world: tuple[LendingConfig, Path, Lakehouse], delivery: tuple[Path, list[date]]
) -> None:
    # Every bronze asset of a run checks the same delivery; a clean one is remembered, but only
    # for exactly those bytes and that silver.
    _, _, lake = world
    landing, days = delivery
    check_delivery(lake, LENDING, landing, days)
    check_delivery(lake, LENDING, landing, days)  # remembered: the same files and silver
    name = _repay_an_unknown_loan(landing, days)
    assert f"{name} (1 row): column 'loan_id'" in _rejected(lake, landing, days)
    assert f"{name} (1 row): column 'loan_id'" in _rejected(lake, landing, days)  # not remembered


def test_a_repayment_of_a_loan_booked_in_the_same_delivery_passes(
    world: tuple[LendingConfig, Path, Lakehouse], delivery: tuple[Path, list[date]]
) -> None:
    _, _, lake = world
    landing, days = delivery

    def booked(day: date) -> pl.DataFrame:
        return _rows(landing, "loans", day).filter(pl.col("status") == "open")

    booked_day = next(d for d in days[:10] if booked(d).height)
    loan = booked(booked_day)["loan_id"][0]
    assert lake.read("silver.loans", where=pl.col("loan_id") == loan).is_empty()
    later = booked_day + timedelta(days=3)
    _rewrite(
        landing,
        "repayments",
        later,
        lambda f: pl.concat(
            [
                f,
                pl.DataFrame(
                    {
                        "loan_id": [loan],
                        "statement_number": [1],
                        "due_date": [later],
                        "amount_due": [100.0],
                        "amount_paid": [100.0],
                        "status": ["paid"],
                        "days_past_due": [0],
                        "balance": [1000.0],
                    },
                    schema=LENDING_FEEDS["repayments"].schema,
                ),
            ]
        ),
    )
    check_delivery(lake, LENDING, landing, days)


def test_days_past_due_falling_with_nothing_paid_after_a_silver_statement(
    world: tuple[LendingConfig, Path, Lakehouse], delivery: tuple[Path, list[date]]
) -> None:
    _, _, lake = world
    landing, days = delivery
    # Loans in arrears at the end of the ingested days, and their next (delivered) statement.
    arrears = (
        lake.read("silver.repayments")
        .sort("due_date")
        .group_by("loan_id")
        .last()
        .filter(pl.col("days_past_due") >= 30)
    )
    delivered = _all_rows(landing, "repayments", days).sort("due_date").group_by("loan_id").first()
    target = (
        delivered.join(arrears, on="loan_id", suffix="_before").sort("loan_id").row(0, named=True)
    )
    lowered = target["days_past_due_before"] - 30
    name = _rewrite(
        landing,
        "repayments",
        target["due_date"],
        lambda f: f.with_columns(
            pl.when(pl.col("loan_id") == target["loan_id"])
            .then(pl.struct(days_past_due=pl.lit(lowered), amount_paid=pl.lit(0.0)))
            .otherwise(pl.struct("days_past_due", "amount_paid"))
            .struct.unnest()
        ).select(list(LENDING_FEEDS["repayments"].columns)),
    )
    message = _rejected(lake, landing, days)
    assert (
        f"{name} (1 row): column 'days_past_due': 1 statements with nothing paid fall below the "
        "loan's previous statement (rule: days past due fall only with a payment; e.g. "
        f"'{target['loan_id']}' on {target['due_date']}: {lowered} after "
        f"{target['days_past_due_before']})"
    ) in message


def test_days_past_due_falling_within_the_delivery(
    world: tuple[LendingConfig, Path, Lakehouse], delivery: tuple[Path, list[date]]
) -> None:
    _, _, lake = world
    landing, days = delivery
    statements = _all_rows(landing, "repayments", days).sort("due_date")
    # A loan whose last silver statement (if any) is at most 60 days past due: setting its first
    # delivered statement to 60 must break nothing, so only the second one is refused.
    before = (
        lake.read("silver.repayments")
        .sort("due_date")
        .group_by("loan_id")
        .agg(pl.col("days_past_due").last().alias("dpd_before"))
    )
    twice = (
        statements.group_by("loan_id")
        .agg(pl.col("due_date"))
        .filter(pl.col("due_date").list.len() == 2)
        .join(before, on="loan_id", how="left")
        .filter(pl.col("dpd_before").is_null() | (pl.col("dpd_before") <= 60))
        .sort("loan_id")  # group_by's order varies from run to run
    )
    loan, (first, second) = twice["loan_id"][0], twice["due_date"][0]

    def set_dpd(dpd: int) -> Callable[[pl.DataFrame], pl.DataFrame]:
        is_loan = pl.col("loan_id") == loan
        return lambda f: f.with_columns(
            pl.when(is_loan).then(dpd).otherwise("days_past_due").alias("days_past_due"),
            pl.when(is_loan).then(0.0).otherwise("amount_paid").alias("amount_paid"),
            pl.when(is_loan).then(pl.lit("missed")).otherwise("status").alias("status"),
        )

    _rewrite(landing, "repayments", first, set_dpd(60))
    name = _rewrite(landing, "repayments", second, set_dpd(30))
    message = _rejected(lake, landing, days)
    assert f"{name} (1 row): column 'days_past_due': 1 statements" in message
    assert f"e.g. '{loan}' on {second}: 30 after 60)" in message


def test_an_application_dated_after_its_loan_s_first_repayment(
    world: tuple[LendingConfig, Path, Lakehouse], delivery: tuple[Path, list[date]]
) -> None:
    _, _, lake = world
    landing, days = delivery
    loans = _all_rows(landing, "loans", days).filter(pl.col("status") == "open")
    first_due = (
        _all_rows(landing, "repayments", days).group_by("loan_id").agg(pl.col("due_date").min())
    )
    target = (
        loans.join(first_due, on="loan_id")
        .filter(pl.col("due_date") + timedelta(days=2) <= days[-1])
        .sort("loan_id")
        .row(0, named=True)
    )
    late_day = target["due_date"] + timedelta(days=2)
    late = datetime.combine(late_day, datetime.min.time(), UTC)
    # The application is re-delivered late, in the file of a day after its loan's first due
    # date: every file passes its own contract (nothing is dated after its delivery day), only
    # the cross-feed rule sees the contradiction.
    spec = LENDING_FEEDS["loan_applications"]
    original = landing_path(landing, spec, target["originated_on"])
    rows = read_landing(original, spec)
    moved = rows.filter(pl.col("application_id") == target["application_id"])
    write_frame(
        rows.filter(pl.col("application_id") != target["application_id"]),
        original,
        spec.file_format,
    )
    name = _rewrite(
        landing,
        "loan_applications",
        late_day,
        lambda f: pl.concat([f, moved.with_columns(pl.lit(late).alias("applied_at"))]),
    )
    message = _rejected(lake, landing, days)
    assert (
        f"{name} (1 row): column 'applied_at': 1 applications dated after their loan's first "
        f"repayment (rule: application before first repayment; e.g. "
        f"'{target['application_id']}' applied {late.date()}, first due {target['due_date']})"
    ) in message


def test_every_broken_rule_is_reported_at_once(
    world: tuple[LendingConfig, Path, Lakehouse], delivery: tuple[Path, list[date]]
) -> None:
    _, _, lake = world
    landing, days = delivery
    day = next(
        d
        for d in days
        if _rows(landing, "loans", d).height and _rows(landing, "repayments", d).height
    )
    _rewrite(landing, "loans", day, lambda f: f.with_columns(pl.lit(12).alias("term_months")))
    _rewrite(
        landing,
        "repayments",
        day,
        lambda f: pl.concat([f, f.head(1).with_columns(pl.lit("L9999999").alias("loan_id"))]),
    )
    with pytest.raises(DeliveryError) as info:
        check_delivery(lake, LENDING, landing, days)
    rules = [p.rsplit("(rule: ", 1)[1].split(";")[0].rstrip(")") for p in info.value.problems]
    assert rules == ["product catalogue", "repayment of a known loan"]


def test_a_negative_income_is_refused_by_the_contract(
    world: tuple[LendingConfig, Path, Lakehouse], delivery: tuple[Path, list[date]]
) -> None:
    _, _, lake = world
    landing, days = delivery
    day = next(d for d in days if _rows(landing, "loan_applications", d).height)
    spec = LENDING_FEEDS["loan_applications"]
    _rewrite(
        landing,
        "loan_applications",
        day,
        lambda f: f.with_columns(
            pl.when(pl.int_range(pl.len()) == 0)
            .then(-52_000.0)
            .otherwise("annual_income")
            .alias("annual_income")
        ),
    )
    path = landing_path(landing, spec, day)
    with pytest.raises(LandingFileError) as info:
        read_landing(path, spec)
    assert f"landing file {path} rejected" in str(info.value)
    assert "column 'annual_income': 1 negative rows (rule: >= 0)" in str(info.value)
    with pytest.raises(LandingFileError):
        check_delivery(lake, LENDING, landing, days)  # the delivery read applies the contract


def test_the_bronze_assets_refuse_the_delivery_and_write_nothing(
    world: tuple[LendingConfig, Path, Lakehouse],
    delivery: tuple[Path, list[date]],
    tmp_path: Path,
) -> None:
    _, _, ingested = world
    landing, days = delivery
    shutil.copytree(Path(ingested.uri), tmp_path / "lake")
    lake = project_lakehouse(tmp_path / "lake")
    before = {spec.name: lake.version(spec.name) for spec in LENDING.tables()}
    day = next(d for d in days if _rows(landing, "repayments", d).height)
    _rewrite(
        landing,
        "repayments",
        day,
        lambda f: pl.concat([f, f.head(1).with_columns(pl.lit("L9999999").alias("loan_id"))]),
    )
    result = materialize(
        source_assets(credit().source),
        resources={
            "lakehouse": LakehouseResource(uri=str(tmp_path / "lake")),
            "landing": LandingResource(path=str(landing)),
        },
        instance=DagsterInstance.ephemeral(),
        tags={
            ASSET_PARTITION_RANGE_START_TAG: days[0].isoformat(),
            ASSET_PARTITION_RANGE_END_TAG: days[-1].isoformat(),
        },
        raise_on_error=False,
    )
    assert not result.success
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert len(failures) == len(LENDING.feeds)  # every bronze asset refused the delivery
    message = failures[0].step_failure_data.error.cause.message
    assert "(rule: repayment of a known loan; e.g. 'L9999999')" in message
    assert {spec.name: lake.version(spec.name) for spec in LENDING.tables()} == before
