"""Tests of the lending simulator: determinism, the landing contract, the servicing mechanics,
the documented hazard and truth, and the economic shock's covariate and concept shift."""

from __future__ import annotations

from datetime import date, timedelta
from functools import cache
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from lakehouse.ingest.reader import read_landing
from lakehouse.sources.claim import RECORD_DIR
from lakehouse.sources.contract import EVALUATION_DIR, landing_path, list_landing_files
from lakehouse.sources.lending import EconomicShock, HazardCoefficients, LendingConfig, simulate
from lakehouse.sources.lending.contract import (
    CREDIT_TRUTH,
    CREDIT_TRUTH_COLUMNS,
    LENDING_FEEDS,
    TERMS,
    truth_path,
)
from lakehouse.sources.lending.hazard import default_probability, miss_probability

SMALL = LendingConfig(loans=300, days=90, seed=3, shock=EconomicShock(day=45))
MEDIUM = LendingConfig(loans=2000, days=420, seed=11, shock=EconomicShock(day=210))
COEF = HazardCoefficients()


def _files(root: Path) -> dict[str, bytes]:
    """The data files under ``root`` (not the record of which world wrote them)."""
    files = sorted(
        p for p in root.rglob("*") if p.is_file() and p.relative_to(root).parts[0] != RECORD_DIR
    )
    return {str(p.relative_to(root)): p.read_bytes() for p in files}


@cache  # frames are immutable; module fixtures share their files
def _load(root: Path, feed: str) -> pl.DataFrame:
    paths = list_landing_files(root, feed)
    return pl.concat([read_landing(path, LENDING_FEEDS[feed]) for path in paths])


@cache
def _truth(root: Path) -> pl.DataFrame:
    files = root / EVALUATION_DIR / CREDIT_TRUTH / "*" / "*.parquet"
    return pl.read_parquet(files, hive_partitioning=False)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("small")
    simulate(SMALL, root)
    return root


@pytest.fixture(scope="module")
def medium_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("medium")
    simulate(MEDIUM, root)
    return root


# --- determinism and partial runs -----------------------------------------------------------


def test_same_config_gives_identical_bytes(small_run: Path, tmp_path: Path) -> None:
    result = simulate(SMALL, tmp_path)
    assert _files(tmp_path) == _files(small_run)
    assert result.days_written == SMALL.days
    assert result.files_written == SMALL.days * (len(LENDING_FEEDS) + 1)
    assert result.rows["repayments"] == _load(tmp_path, "repayments").height


def test_different_seed_gives_different_files(small_run: Path, tmp_path: Path) -> None:
    other = LendingConfig(loans=SMALL.loans, days=3, seed=4, shock=None)
    simulate(other, tmp_path)
    feed = LENDING_FEEDS["loan_applications"]
    day = SMALL.start_date
    assert landing_path(tmp_path, feed, day).read_bytes() != (
        landing_path(small_run, feed, day).read_bytes()
    )


def test_sub_range_equals_slice_of_full_run(small_run: Path, tmp_path: Path) -> None:
    seen: list[date] = []
    result = simulate(SMALL, tmp_path, first_day=40, last_day=49, progress=seen.append)
    assert seen == [SMALL.date_of(i) for i in range(40, 50)]
    assert result.first_date == SMALL.date_of(40) and result.days_written == 10
    written, full = _files(tmp_path), _files(small_run)
    assert len(written) == 10 * (len(LENDING_FEEDS) + 1)
    assert written == {name: full[name] for name in written}


def test_longer_horizon_keeps_earlier_days(small_run: Path, tmp_path: Path) -> None:
    shorter = LendingConfig(
        loans=SMALL.loans, days=30, seed=SMALL.seed, shock=EconomicShock(day=45)
    )
    simulate(shorter, tmp_path, first_day=25)
    written, full = _files(tmp_path), _files(small_run)
    assert written == {name: full[name] for name in written}


def test_a_shock_changes_nothing_before_its_day(small_run: Path, tmp_path: Path) -> None:
    calm = LendingConfig(loans=SMALL.loans, days=SMALL.days, seed=SMALL.seed, shock=None)
    simulate(calm, tmp_path, last_day=44)
    written, full = _files(tmp_path), _files(small_run)
    assert written == {name: full[name] for name in written}
    calm_run = tmp_path / "calm"
    simulate(calm, calm_run, first_day=45, last_day=45)
    shocked = pl.read_parquet(truth_path(small_run, SMALL.date_of(45)))
    unshocked = pl.read_parquet(truth_path(calm_run, SMALL.date_of(45)))
    assert shocked["loan_id"].equals(unshocked["loan_id"])
    # Unemployment up and a steeper debt-to-income effect from the shock day on.
    assert (shocked["pd_12m"] > unshocked["pd_12m"]).mean() > 0.8  # type: ignore[operator]
    assert shocked["pd_12m"].mean() > 1.3 * unshocked["pd_12m"].mean()  # type: ignore[operator]


def test_invalid_configs_and_ranges_are_rejected(tmp_path: Path) -> None:
    for bad in (
        {"loans": 0},
        {"days": 0},
        {"seed": -1},
        {"formats": {"repayments": "xlsx"}},
        {"formats": {"customers": "csv"}},
    ):
        with pytest.raises(ValueError):
            LendingConfig(**bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="shock day"):
        EconomicShock(day=0)
    with pytest.raises(ValueError):
        simulate(SMALL, tmp_path, first_day=10, last_day=5)
    with pytest.raises(ValueError):
        simulate(SMALL, tmp_path, last_day=SMALL.days)


# --- the landing contract ----------------------------------------------------------------------


def test_one_valid_file_per_feed_and_day_plus_the_truth(small_run: Path) -> None:
    for name, feed in LENDING_FEEDS.items():
        files = list_landing_files(small_run, name)
        assert len(files) == SMALL.days, name
        assert {f.suffix.lstrip(".") for f in files} == {feed.file_format}
        for path in files:
            read_landing(path, feed)  # every rule of the contract passes
    for day in range(SMALL.days):
        truth = pl.read_parquet(truth_path(small_run, SMALL.date_of(day)))
        assert truth.schema == pl.Schema(CREDIT_TRUTH_COLUMNS)
        assert (truth["as_of_date"] == SMALL.date_of(day)).all()
    macro = _load(small_run, "macro_indicators")
    assert macro["published_on"].to_list() == [SMALL.date_of(0), date(2025, 2, 1), date(2025, 3, 1)]


def test_format_override_writes_the_same_rows(small_run: Path, tmp_path: Path) -> None:
    as_csv = LendingConfig(
        loans=SMALL.loans,
        days=SMALL.days,
        seed=SMALL.seed,
        shock=SMALL.shock,
        formats={"repayments": "csv"},
    )
    simulate(as_csv, tmp_path, first_day=60, last_day=62)
    for day in range(60, 63):
        feed = LENDING_FEEDS["repayments"]
        csv = read_landing(landing_path(tmp_path, feed, SMALL.date_of(day), "csv"), feed)
        parquet = read_landing(landing_path(small_run, feed, SMALL.date_of(day)), feed)
        assert csv.equals(parquet)


def test_protected_attributes_are_only_in_applications(small_run: Path) -> None:
    applications = _load(small_run, "loan_applications")
    assert applications["age_band"].null_count() == 0 and applications["sex"].n_unique() == 2
    for name, feed in LENDING_FEEDS.items():
        if name != "loan_applications":
            assert not {"age_band", "sex"} & set(feed.columns), name


# --- servicing mechanics ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def statements(medium_run: Path) -> pl.DataFrame:
    """Every statement with the loan's previous landed statement (null for its first)."""
    loans = _load(medium_run, "loans").filter(pl.col("status") == "open")
    return (
        _load(medium_run, "repayments")
        .join(loans.select("loan_id", "installment", "term_months"), on="loan_id")
        .sort("loan_id", "due_date")
        .with_columns(
            pl.col("days_past_due").shift(1).over("loan_id").alias("previous_dpd"),
            pl.col("due_date").shift(1).over("loan_id").alias("previous_due"),
            pl.col("statement_number").shift(1).over("loan_id").alias("previous_number"),
            pl.col("balance").shift(1).over("loan_id").alias("previous_balance"),
        )
    )


def test_days_past_due_move_in_30_day_cycles(statements: pl.DataFrame) -> None:
    assert statements["days_past_due"].is_in([0, 30, 60, 90, 120, 150, 180]).all()
    known = statements.filter(pl.col("previous_dpd").is_not_null())
    within_term = known.filter(pl.col("statement_number") <= pl.col("term_months"))
    step = pl.col("days_past_due") - pl.col("previous_dpd")
    by_status = within_term.group_by("status").agg(step.unique().sort().alias("steps"))
    steps = dict(zip(by_status["status"], by_status["steps"].to_list(), strict=True))
    assert steps["missed"] == [30]  # a missed payment adds a cycle
    assert within_term.filter(pl.col("status") == "paid")["days_past_due"].max() == 0
    assert steps["partial"] == [-30]  # the current installment plus one in arrears
    assert known.filter((pl.col("amount_paid") == 0) & (step < 0)).is_empty()
    missed = within_term.filter(pl.col("status") == "missed")
    assert missed.height > 500 and (missed["amount_paid"] == 0).all()
    due = pl.col("installment") * (pl.col("previous_dpd") / 30 + 1)
    assert (within_term["amount_due"] - within_term.select(due).to_series()).abs().max() < 0.011


def test_statements_are_monthly_on_the_due_day(statements: pl.DataFrame) -> None:
    known = statements.filter(pl.col("previous_due").is_not_null())
    assert (known["statement_number"] - known["previous_number"] == 1).all()
    assert (known["due_date"] == known["previous_due"].dt.offset_by("1mo")).all()
    assert statements["due_date"].dt.day().max() <= 28
    assert (known["balance"] <= known["previous_balance"] + 1e-9).all()


def test_closing_rows_follow_their_last_statement(
    medium_run: Path, statements: pl.DataFrame
) -> None:
    loans = _load(medium_run, "loans")
    closed = loans.filter(pl.col("status") != "open")
    assert closed["closed_on"].null_count() == 0
    assert (closed["updated_at"].dt.date() == closed["closed_on"]).all()
    last = statements.group_by("loan_id").agg(pl.all().sort_by("due_date").last())
    ends = closed.join(last, on="loan_id", suffix="_statement")
    assert (ends["closed_on"] == ends["due_date"]).all()  # loans close at a statement
    charged = ends.filter(pl.col("status") == "charged_off")
    delinquent = charged.filter(pl.col("charge_off_reason") == "delinquency")
    bankrupt = charged.filter(pl.col("charge_off_reason") == "bankruptcy")
    assert delinquent.height > 20 and bankrupt.height > 5
    past_term = pl.col("statement_number") > pl.col("term_months")
    assert delinquent.filter(~past_term)["days_past_due"].unique().to_list() == [180]
    assert (charged["status_statement"] == "missed").all()
    paid = ends.filter(pl.col("status") == "paid_off")
    assert paid.height > 50 and (paid["balance"] == 0).all()
    assert (paid["status_statement"] == "paid").all()
    later = statements.join(closed.select("loan_id", "closed_on"), on="loan_id").filter(
        pl.col("due_date") > pl.col("closed_on")
    )
    assert later.is_empty()
    reports = _load(medium_run, "bureau_reports").join(
        closed.select(pl.col("applicant_id"), "closed_on"), on="applicant_id"
    )
    assert reports.filter(pl.col("reported_on") > pl.col("closed_on")).is_empty()


def test_every_loan_has_a_catalogue_term_and_an_earlier_application(medium_run: Path) -> None:
    applications = _load(medium_run, "loan_applications")
    loans = _load(medium_run, "loans").filter(pl.col("status") == "open")
    assert loans["loan_id"].is_unique().all()
    assert loans["term_months"].is_in(list(TERMS)).all()
    assert applications["term_months"].is_in(list(TERMS)).all()
    joined = loans.join(applications, on="application_id", suffix="_application")
    assert joined.height == loans.height == applications.height
    assert (joined["applied_at"] <= joined["updated_at"]).all()
    assert (joined["applied_at"].dt.date() == joined["originated_on"]).all()
    first_due = _load(medium_run, "repayments").group_by("loan_id").agg(pl.col("due_date").min())
    assert (
        joined.join(first_due, on="loan_id")
        .filter(pl.col("applied_at").dt.date() > pl.col("due_date"))
        .is_empty()
    )
    assert set(_load(medium_run, "repayments")["loan_id"]) <= set(loans["loan_id"])


# --- hazard and truth ----------------------------------------------------------------------------


def _observed_inputs(root: Path, day: date) -> pl.DataFrame:
    """Per loan with a landed statement by ``day``: the hazard inputs the files show."""
    applications = _load(root, "loan_applications")
    loans = _load(root, "loans").filter(pl.col("status") == "open")
    latest_report = (
        _load(root, "bureau_reports")
        .filter(pl.col("reported_on") <= day)
        .sort("reported_on")
        .group_by("applicant_id")
        .last()
    )
    latest_statement = (
        _load(root, "repayments")
        .filter(pl.col("due_date") <= day)
        .sort("due_date")
        .group_by("loan_id")
        .last()
        .select("loan_id", "days_past_due")
    )
    return (
        loans.select("loan_id", "application_id", "applicant_id", "term_months")
        .join(applications.drop("term_months"), on=["application_id", "applicant_id"])
        .join(latest_statement, on="loan_id")
        .join(latest_report, on="applicant_id", how="left", suffix="_reported")
        .with_columns(
            pl.coalesce("revolving_utilization_reported", "revolving_utilization").alias("util"),
            pl.coalesce("debt_to_income_reported", "debt_to_income").alias("dti"),
            pl.coalesce("inquiries_6m_reported", "inquiries_6m").alias("inq"),
        )
    )


@pytest.mark.parametrize("offset", [150, 380])  # before and after the shock on day 210
def test_truth_miss_probability_is_the_documented_hazard_of_landed_data(
    medium_run: Path, offset: int
) -> None:
    day = MEDIUM.date_of(offset)
    x = _observed_inputs(medium_run, day)
    shock = MEDIUM.shock
    assert shock is not None
    shocked = offset >= shock.day
    unemployment = (shock.economy if shocked else MEDIUM.economy).unemployment_rate
    dti_effect = shock.dti_effect if shocked else 1.0
    logit = (
        COEF.intercept
        + COEF.bureau_score * (x["bureau_score"] - 700) / 50
        + COEF.debt_to_income * dti_effect * (x["dti"] - 0.20) / 0.10
        + COEF.utilization * (x["util"] - 0.5) / 0.25
        + COEF.delinquencies * x["delinquencies_2y"].clip(upper_bound=5)
        + COEF.inquiries * x["inq"].clip(upper_bound=10)
        + COEF.short_employment * (x["employment_years"] < 2)
        + COEF.long_term * (x["term_months"] == 60)
        + pl.Series(COEF.arrears)[(x["days_past_due"] // 30).clip(upper_bound=3)]
        + COEF.unemployment * (unemployment - 4.0)
    )
    expected = x.select("loan_id").with_columns((1 / (1 + (-logit).exp())).alias("expected"))
    truth = _truth(medium_run).filter(pl.col("as_of_date") == day)
    joined = truth.join(expected, on="loan_id")
    assert joined.height > 1000
    assert (joined["miss_probability"] - joined["expected"]).abs().max() < 1e-12


def _default_by_paths(
    base: float, cycles: int, following: int, statements: int, term: int, paths: int
) -> float:
    """Monte Carlo of the payment transitions (a brute-force reference of the truth)."""
    rng = np.random.default_rng(0)
    p = [float(miss_probability(np.array([base]), np.array([k]), COEF)[0]) for k in range(4)]
    state = np.full(paths, cycles)
    open_ = np.ones(paths, dtype=bool)
    defaulted = np.zeros(paths, dtype=bool)
    for step in range(statements):
        number = following + step
        u = rng.random((4, paths))
        live = open_ & ~defaulted
        miss = u[0] < np.array(p)[state]
        if number > term:  # past the term a miss charges off, a payment settles the loan
            defaulted |= live & miss
            open_ &= ~(live & ~miss)
            continue
        bankrupt = live & miss & (u[1] < COEF.bankruptcy_share)
        cured = u[2] < COEF.cure
        after = np.where(miss, state + 1, np.where((state == 0) | cured, 0, state - 1))
        prepaid = live & ~miss & (state == 0) & (number < term) & (u[3] < COEF.prepayment)
        state = np.where(live, after, state)
        defaulted |= bankrupt | (live & (state >= 3))
        open_ &= ~prepaid & ~(live & ~defaulted & (number == term) & (state == 0))
    return float(defaulted.mean())


@pytest.mark.parametrize(
    ("base", "cycles", "following", "statements", "term"),
    [
        (-4.7, 0, 5, 12, 36),  # a typical current loan
        (-3.0, 1, 30, 12, 36),  # one cycle behind, close to its term
        (-4.0, 2, 35, 12, 36),  # two behind, past its term within the window
        (-5.0, 0, 58, 12, 60),  # reaches its last statement
        (-3.5, 1, 10, 11, 60),  # 11 statements in the window (a leap year)
    ],
)
def test_truth_pd_is_the_chain_s_default_probability(
    base: float, cycles: int, following: int, statements: int, term: int
) -> None:
    exact = default_probability(
        np.array([base]),
        np.array([cycles]),
        np.array([following]),
        np.array([statements]),
        np.array([term]),
        COEF,
    )[0]
    paths = 200_000
    estimate = _default_by_paths(base, cycles, following, statements, term, paths)
    assert abs(exact - estimate) < 4 * np.sqrt(exact * (1 - exact) / paths) + 1e-4


def test_truth_covers_every_open_loan_and_defaulted_ones_are_certain(medium_run: Path) -> None:
    day = MEDIUM.date_of(200)  # before the shock
    loans = _load(medium_run, "loans")
    booked = loans.filter((pl.col("status") == "open") & (pl.col("originated_on") <= day))
    closed = loans.filter((pl.col("status") != "open") & (pl.col("closed_on") <= day))
    expected = set(booked["loan_id"]) - set(closed["loan_id"])
    truth = _truth(medium_run).filter(pl.col("as_of_date") == day)
    assert set(truth["loan_id"]) == expected
    defaulted = (
        _load(medium_run, "repayments")
        .filter((pl.col("due_date") <= day) & (pl.col("days_past_due") >= 90))["loan_id"]
        .unique()
    )
    certain = truth.filter(pl.col("loan_id").is_in(defaulted.implode()))
    assert certain.height > 10 and (certain["pd_12m"] == 1.0).all()
    performing = truth.filter(~pl.col("loan_id").is_in(defaulted.implode()))
    assert 0.02 < performing["pd_12m"].mean() < 0.12  # type: ignore[operator]


# --- the economic shock ------------------------------------------------------------------------


def test_the_shock_shifts_covariates_and_raises_risk(medium_run: Path) -> None:
    shock = MEDIUM.date_of(210)
    applications = _load(medium_run, "loan_applications").filter(
        pl.col("applied_at").dt.date() >= MEDIUM.start_date + timedelta(days=1)
    )
    before = applications.filter(pl.col("applied_at").dt.date() < shock)
    after = applications.filter(pl.col("applied_at").dt.date() >= shock)
    income_ratio = after["annual_income"].median() / before["annual_income"].median()  # type: ignore[operator]
    assert 0.75 < income_ratio < 0.95  # new applicants earn 15 % less
    reports = _load(medium_run, "bureau_reports")

    def mean_of(column: str, first: int, last: int) -> float:
        window = reports.filter(
            pl.col("reported_on").is_between(MEDIUM.date_of(first), MEDIUM.date_of(last))
        )
        return float(window[column].mean())  # type: ignore[arg-type]

    assert (
        mean_of("revolving_utilization", 330, 419)
        > mean_of("revolving_utilization", 120, 209) + 0.06
    )
    assert mean_of("debt_to_income", 330, 419) > mean_of("debt_to_income", 120, 209) + 0.01
    truth = _truth(medium_run).filter(pl.col("pd_12m") < 1)
    pre = truth.filter(pl.col("as_of_date") == MEDIUM.date_of(200))["pd_12m"].mean()
    post = truth.filter(pl.col("as_of_date") == MEDIUM.date_of(400))["pd_12m"].mean()
    assert post > 1.8 * pre  # type: ignore[operator]
    macro = _load(medium_run, "macro_indicators")
    assert macro.filter(pl.col("published_on") < shock)["unemployment_rate"].unique().to_list() == [
        4.0
    ]
    assert macro.filter(pl.col("published_on") > shock)["unemployment_rate"].unique().to_list() == [
        8.0
    ]


def test_the_book_is_stationary_before_the_shock(medium_run: Path) -> None:
    """No drift without a cause: the seasoned book's bureau attributes start where the book
    stays (a warm-up artefact would raise false drift alarms before any shock)."""
    reports = _load(medium_run, "bureau_reports")
    assert reports.filter(pl.col("reported_on") == MEDIUM.start_date).height >= MEDIUM.loans

    def mean_of(column: str, first: int, last: int) -> float:
        window = reports.filter(
            pl.col("reported_on").is_between(MEDIUM.date_of(first), MEDIUM.date_of(last))
        )
        return float(window[column].mean())  # type: ignore[arg-type]

    for column in ("inquiries_6m", "revolving_utilization", "debt_to_income"):
        early, late = mean_of(column, 0, 40), mean_of(column, 160, 209)
        assert abs(late / early - 1) < 0.05, column


def test_realized_defaults_rise_after_the_shock(medium_run: Path) -> None:
    """180-day default rates of loans current at an as-of date, before and after the shock."""
    repayments = _load(medium_run, "repayments")
    loans = _load(medium_run, "loans")
    first_default = (
        pl.concat(
            [
                repayments.filter(pl.col("days_past_due") >= 90).select(
                    "loan_id", pl.col("due_date").alias("default_date")
                ),
                loans.filter(pl.col("status") == "charged_off").select(
                    "loan_id", pl.col("closed_on").alias("default_date")
                ),
            ]
        )
        .group_by("loan_id")
        .agg(pl.col("default_date").min())
    )

    def rate(as_of: int) -> float:
        start, end = MEDIUM.date_of(as_of), MEDIUM.date_of(as_of + 179)
        truth = _truth(medium_run).filter(
            (pl.col("as_of_date") == start - timedelta(days=1)) & (pl.col("pd_12m") < 1)
        )
        joined = truth.join(first_default, on="loan_id", how="left")
        hit = joined["default_date"].is_between(start, end).fill_null(False)
        return float(hit.mean())  # type: ignore[arg-type]

    before, after = rate(30), rate(230)
    assert 0.01 < before < 0.06
    assert after > 1.5 * before
