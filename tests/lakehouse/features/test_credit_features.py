"""The credit feature tables (builder ``lending_credit``) and default labels (``credit_default``)
against brute-force references on a small simulated lending world."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from lakehouse.features.lending import CREDIT_FEATURES
from lakehouse.features.views import build_feature_batch
from lakehouse.sources.lending import LendingConfig
from lakehouse.storage import Lakehouse
from models.usecase import UseCase, project_lakehouse
from tests.credit_world import credit, lending_world

DAYS = 400
CREDIT: UseCase = credit()
KEY = "loan_id"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[LendingConfig, Lakehouse]:
    return lending_world(
        tmp_path_factory.mktemp("credit"), loans=300, days=DAYS, seed=5, shock_day=250
    )


def features(lake: Lakehouse, days: list[date]) -> pl.DataFrame:
    """Every view's rows of ``days`` joined into one frame (key, day, every feature)."""
    spec = CREDIT.features
    batch = build_feature_batch(
        spec.builder, lake, days, spec.views, spec.ratios, KEY, created_at=datetime.now(UTC)
    )
    stamps = ["event_timestamp", "created_timestamp"]
    frames = [frame.drop(stamps) for frame in batch.tables.values()]
    joined = frames[0]
    for other in frames[1:]:
        joined = joined.join(other, on=[KEY, "feature_date"])
    return joined.sort("feature_date", KEY)


def _months_back(day: date, months: int) -> date:
    """``day`` minus calendar months, the day of month clamped to the month's end."""
    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def _reference(lake: Lakehouse, loan: str, day: date) -> dict[str, object]:
    """The features of ``loan`` at the end of ``day``, row by row from silver."""
    account = lake.read("silver.loans", where=pl.col(KEY) == loan).row(0, named=True)
    application = lake.read(
        "silver.loan_applications", where=pl.col("application_id") == account["application_id"]
    ).row(0, named=True)
    year_ago = _months_back(day, 12)
    statements = lake.read(
        "silver.repayments",
        where=(pl.col(KEY) == loan) & (pl.col("due_date") <= day) & (pl.col("due_date") > year_ago),
    ).sort("due_date")
    reports = lake.read(
        "silver.bureau_reports",
        where=(pl.col("applicant_id") == account["applicant_id"])
        & (pl.col("reported_on") <= day)
        & (pl.col("reported_on") > year_ago),
    ).sort("reported_on")
    row: dict[str, object] = {
        "current_dpd": statements["days_past_due"][-1] if statements.height else 0
    }
    for months in (3, 6, 12):
        window = statements.filter(pl.col("due_date") > _months_back(day, months))
        row[f"max_dpd_{months}m"] = window["days_past_due"].max() or 0
        row[f"missed_payments_{months}m"] = int((window["status"] == "missed").sum())
    booked = account["originated_on"]
    row["months_on_book"] = (
        (day.year - booked.year) * 12 + day.month - booked.month - (day.day < booked.day)
    )
    latest = reports.row(-1, named=True) if reports.height else application
    row["revolving_utilization"] = latest["revolving_utilization"]
    row["debt_to_income"] = latest["debt_to_income"]
    row["inquiries_6m"] = latest["inquiries_6m"]
    old = reports.filter(pl.col("reported_on") <= _months_back(day, 6))
    before = old.row(-1, named=True) if old.height else application
    row["utilization_trend_6m"] = latest["revolving_utilization"] - before["revolving_utilization"]
    for column in ("bureau_score", "delinquencies_2y", "annual_income", "employment_years"):
        row[column] = application[column]
    for column in ("amount", "term_months", "interest_rate", "grade", "purpose"):
        row[column] = account[column]
    row["amount_to_income"] = account["amount"] / application["annual_income"]
    return row


def _open_on(lake: Lakehouse, day: date) -> list[str]:
    loans = lake.read("silver.loans")
    open_ = loans.filter(
        (pl.col("originated_on") <= day)
        & (pl.col("closed_on").is_null() | (pl.col("closed_on") > day))
    )
    return sorted(open_[KEY].to_list())


def test_one_row_per_loan_open_at_the_end_of_the_day(
    world: tuple[LendingConfig, Lakehouse],
) -> None:
    config, lake = world
    for offset in (0, 200, 399):
        day = config.date_of(offset)
        rows = features(lake, [day])
        assert rows[KEY].to_list() == _open_on(lake, day)
    stamped = build_feature_batch(
        CREDIT.features.builder,
        lake,
        [config.date_of(200)],
        CREDIT.features.views,
        CREDIT.features.ratios,
        KEY,
        created_at=datetime.now(UTC),
    ).tables["features.loan_terms"]
    midnight = datetime.combine(config.date_of(201), datetime.min.time(), UTC)
    assert (stamped["event_timestamp"] == midnight).all()


@pytest.mark.parametrize("offset", [20, 210, 390])
def test_features_match_a_brute_force_reference(
    world: tuple[LendingConfig, Lakehouse], offset: int
) -> None:
    config, lake = world
    day = config.date_of(offset)
    rows = features(lake, [day])
    delinquent = rows.filter(pl.col("max_dpd_12m") > 0)
    sample = pl.concat([delinquent.head(10), rows.sample(25, seed=offset)]).unique(KEY)
    assert delinquent.height > 0
    for row in sample.iter_rows(named=True):
        expected = _reference(lake, row[KEY], day)
        got = {name: row[name] for name in expected}
        assert got == pytest.approx(expected, abs=1e-9), row[KEY]


def test_features_do_not_depend_on_chunking(world: tuple[LendingConfig, Lakehouse]) -> None:
    config, lake = world
    days = [config.date_of(d) for d in range(370, 400)]
    together = features(lake, days)
    for chunk in ([days[5]], days[10:12], [days[0], days[-1]]):
        apart = features(lake, chunk)
        assert apart.equals(together.filter(pl.col("feature_date").is_in(chunk))), chunk


def test_later_data_never_changes_a_day_s_features(
    world: tuple[LendingConfig, Lakehouse], tmp_path: Path
) -> None:
    config, lake = world
    day = config.date_of(300)
    before = features(lake, [day])
    scratch = project_lakehouse(tmp_path / "lake")
    for spec in lake.catalog:
        if spec.layer == "silver" and lake.exists(spec.name):
            scratch.append(spec.name, lake.read(spec.name))
    loan = before.filter(pl.col("current_dpd") == 0)[KEY][0]
    account = lake.read("silver.loans", where=pl.col(KEY) == loan).row(0, named=True)
    tomorrow = day + timedelta(days=1)
    statement = lake.read("silver.repayments").head(1)
    scratch.merge(
        "silver.repayments",
        statement.with_columns(
            pl.lit(loan).alias(KEY),
            pl.lit(tomorrow).alias("due_date"),
            pl.lit(90, dtype=pl.Int64).alias("days_past_due"),
            pl.lit("missed").alias("status"),
        ),
    )
    report = lake.read("silver.bureau_reports").head(1)
    scratch.merge(
        "silver.bureau_reports",
        report.with_columns(
            pl.lit(account["applicant_id"]).alias("applicant_id"),
            pl.lit(tomorrow).alias("reported_on"),
            pl.lit(1.25).alias("revolving_utilization"),
        ),
    )
    assert features(scratch, [day]).equals(before)
    after = features(scratch, [tomorrow]).filter(pl.col(KEY) == loan).row(0, named=True)
    assert after["current_dpd"] == 90 and after["revolving_utilization"] == 1.25


def test_protected_attributes_are_never_read(
    world: tuple[LendingConfig, Lakehouse], tmp_path: Path
) -> None:
    config, lake = world
    assert not {"age_band", "sex"} & set(CREDIT_FEATURES)
    assert set(CREDIT.protected_attributes) == {"age_band", "sex"}
    day = config.date_of(120)
    scratch = project_lakehouse(tmp_path / "lake")
    for spec in lake.catalog:
        if spec.layer == "silver" and lake.exists(spec.name):
            frame = lake.read(spec.name)
            if spec.name == "silver.loan_applications":
                frame = frame.with_columns(
                    pl.lit("65+").alias("age_band"), pl.lit("male").alias("sex")
                )
            scratch.append(spec.name, frame)
    assert features(scratch, [day]).equals(features(lake, [day]))


# --- labels ----------------------------------------------------------------------------------


def _first_defaults(lake: Lakehouse) -> dict[str, date]:
    """Per loan: the first statement at 90+ days past due or the charge-off, whichever first."""
    found: dict[str, date] = {}
    for row in lake.read("silver.repayments").sort("due_date").iter_rows(named=True):
        if row["days_past_due"] >= 90 and row[KEY] not in found:
            found[row[KEY]] = row["due_date"]
    for row in lake.read("silver.loans").iter_rows(named=True):
        if row["status"] == "charged_off":
            found[row[KEY]] = min(found.get(row[KEY], row["closed_on"]), row["closed_on"])
    return found


@pytest.mark.parametrize("offset", [1, 20, 35])
def test_labels_match_a_brute_force_reference(
    world: tuple[LendingConfig, Lakehouse], offset: int
) -> None:
    config, lake = world
    as_of = config.date_of(offset)
    definition = CREDIT.label.definition
    labels = CREDIT.label.builder.build(lake, definition, [as_of])
    assert labels.schema == pl.Schema(dict(definition.spec().schema))
    defaults = _first_defaults(lake)
    end = as_of + timedelta(days=364)
    expected = {}
    for row in lake.read("silver.loans").iter_rows(named=True):
        first = defaults.get(row[KEY])
        repaid = row["status"] == "paid_off" and row["closed_on"] < as_of
        if row["originated_on"] < as_of and not repaid and (first is None or first >= as_of):
            expected[row[KEY]] = int(first is not None and first <= end)
    got = dict(zip(labels[KEY], labels["defaulted_12m"], strict=True))
    assert got == expected
    assert 0 < sum(expected.values()) < len(expected)
    positives = labels.filter(pl.col("defaulted_12m") == 1)
    assert positives["default_date"].to_list() == [defaults[k] for k in positives[KEY]]
    assert labels.filter(pl.col("defaulted_12m") == 0)["default_date"].null_count() == (
        labels.height - positives.height
    )
    assert (labels["matured_on"] == as_of + timedelta(days=364)).all()
    assert (labels["event_timestamp"] == datetime.combine(as_of, datetime.min.time(), UTC)).all()


def test_label_population_matches_the_previous_day_s_features(
    world: tuple[LendingConfig, Lakehouse],
) -> None:
    config, lake = world
    as_of = config.date_of(30)
    labels = CREDIT.label.builder.build(lake, CREDIT.label.definition, [as_of])
    rows = features(lake, [as_of - timedelta(days=1)])
    # Every labelled loan was scored the day before; the others had already defaulted.
    assert set(labels[KEY]) <= set(rows[KEY])
    defaults = _first_defaults(lake)
    assert all(defaults[k] < as_of for k in set(rows[KEY]) - set(labels[KEY]))


def test_label_horizon_and_maturity(world: tuple[LendingConfig, Lakehouse]) -> None:
    definition = CREDIT.label.definition
    assert (definition.horizon_days, definition.maturity_days) == (365, 365)
    matured = date(2026, 3, 1)
    assert definition.as_of_for(matured) == matured - timedelta(days=364)
