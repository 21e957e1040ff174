"""Tests of the SaaS source-system simulator and the landing-file contract it writes."""

from __future__ import annotations

import re
from datetime import date, timedelta
from functools import cache
from pathlib import Path

import polars as pl
import pytest

from lakehouse.catalog import TIMESTAMP
from lakehouse.ingest.reader import read_landing
from lakehouse.sources.contract import (
    EVALUATION_DIR,
    landing_path,
    list_landing_files,
    partition_date,
)
from lakehouse.sources.saas import DriftInjection, SimulationConfig, simulate
from lakehouse.sources.saas.contract import CHURN_TRUTH_COLUMNS, SAAS_FEEDS, truth_path

SMALL = SimulationConfig(customers=250, start_date=date(2025, 1, 1), days=60, seed=3)
MEDIUM = SimulationConfig(customers=2000, start_date=date(2025, 1, 1), days=150, seed=11)
ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def _files(root: Path) -> dict[str, bytes]:
    """The landing files (not the simulator's record of its world, ``_simulated/``)."""
    files = sorted(p for p in root.rglob("*") if p.is_file() and "_simulated" not in p.parts)
    return {str(p.relative_to(root)): p.read_bytes() for p in files}


@cache  # frames are immutable; module fixtures share their files
def _load(root: Path, source: str) -> pl.DataFrame:
    frames = [read_landing(path, SAAS_FEEDS[source]) for path in list_landing_files(root, source)]
    return pl.concat(frames)


@cache  # frames are immutable; module fixtures share their files
def _truth(root: Path) -> pl.DataFrame:
    files = root / EVALUATION_DIR / "churn_truth" / "*" / "*.parquet"
    return pl.read_parquet(files, hive_partitioning=False)


@cache  # frames are immutable; module fixtures share their files
def _cancellations(root: Path) -> pl.DataFrame:
    return (
        _load(root, "subscription_events")
        .filter(pl.col("event_type") == "cancel")
        .select("customer_id", cancel_date=pl.col("event_at").dt.date())
    )


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


def test_same_seed_gives_identical_bytes(small_run: Path, tmp_path: Path) -> None:
    result = simulate(SMALL, tmp_path)
    assert _files(tmp_path) == _files(small_run)
    assert result.days_written == SMALL.days
    assert result.files_written == SMALL.days * (len(SAAS_FEEDS) + 1)
    assert result.rows["usage"] == _load(tmp_path, "usage").height


def test_different_seed_gives_different_files(small_run: Path, tmp_path: Path) -> None:
    other = SimulationConfig(customers=300, start_date=date(2025, 1, 1), days=5, seed=4)
    simulate(other, tmp_path)
    day = other.date_of(4)
    assert (
        landing_path(tmp_path, SAAS_FEEDS["usage"], day).read_bytes()
        != landing_path(small_run, SAAS_FEEDS["usage"], day).read_bytes()
    )


def test_sub_range_equals_slice_of_full_run(small_run: Path, tmp_path: Path) -> None:
    seen: list[date] = []
    result = simulate(SMALL, tmp_path, first_day=40, last_day=44, progress=seen.append)
    expected_days = [SMALL.date_of(i) for i in range(40, 45)]
    assert seen == expected_days
    assert result.days_written == 5 and result.first_date == expected_days[0]
    written = _files(tmp_path)
    full = _files(small_run)
    assert written == {name: full[name] for name in written}
    dates = {partition_date(tmp_path / name) for name in written}
    assert dates == set(expected_days)


def test_longer_horizon_keeps_earlier_days(small_run: Path, tmp_path: Path) -> None:
    shorter = SimulationConfig(
        customers=SMALL.customers, start_date=SMALL.start_date, days=30, seed=SMALL.seed
    )
    simulate(shorter, tmp_path, first_day=25)
    written = _files(tmp_path)
    full = _files(small_run)
    assert len(written) == 5 * (len(SAAS_FEEDS) + 1)
    assert written == {name: full[name] for name in written}


def test_invalid_day_range_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        simulate(SMALL, tmp_path, first_day=10, last_day=5)
    with pytest.raises(ValueError):
        simulate(SMALL, tmp_path, last_day=SMALL.days)


# --- landing contract ----------------------------------------------------------------------------


@pytest.mark.parametrize("source", sorted(SAAS_FEEDS))
def test_files_follow_the_contract(small_run: Path, source: str) -> None:
    contract = SAAS_FEEDS[source]
    files = list_landing_files(small_run, source)
    assert len(files) == SMALL.days  # one file per delivered day, even when it has no rows
    assert all(p.suffix == f".{contract.file_format}" for p in files)
    frame = _load(small_run, source)
    assert frame.height > 0
    assert frame.schema == contract.schema  # read_landing also enforced every rule
    assert frame.select(contract.key).is_duplicated().sum() == 0

    raw_file = max(files, key=lambda p: p.stat().st_size)  # JSON lines files may be empty
    if contract.file_format == "parquet":
        assert pl.read_parquet_schema(raw_file) == dict(contract.columns)
    else:
        reader = pl.read_csv if contract.file_format == "csv" else pl.read_ndjson
        raw = reader(raw_file, infer_schema_length=0) if reader is pl.read_csv else reader(raw_file)
        assert raw.columns == list(contract.columns)
        for name, dtype in contract.columns.items():
            if dtype == TIMESTAMP:
                values = raw[name].drop_nulls().cast(pl.String).to_list()
                assert all(ISO_UTC.match(v) for v in values), name


def test_timestamps_fall_on_their_partition_day(small_run: Path) -> None:
    for source, contract in SAAS_FEEDS.items():
        for path in list_landing_files(small_run, source)[::10]:
            stamp = read_landing(path, SAAS_FEEDS[source])[contract.timestamp_column]
            days = stamp.dt.date() if stamp.dtype == TIMESTAMP else stamp
            assert days.is_empty() or set(days.to_list()) == {partition_date(path)}, path


def test_format_overrides_round_trip(tmp_path: Path) -> None:
    formats = {"usage": "csv", "customers": "parquet", "tickets": "jsonl", "invoices": "csv"}
    cfg = SimulationConfig(customers=150, days=12, seed=5, formats=formats)
    simulate(cfg, tmp_path)
    for source, fmt in formats.items():
        files = list_landing_files(tmp_path, source)
        assert files and all(p.suffix == f".{fmt}" for p in files)
        assert _load(tmp_path, source).schema == SAAS_FEEDS[source].schema


def test_bad_configuration_is_rejected() -> None:
    with pytest.raises(ValueError):
        SimulationConfig(formats={"usage": "xlsx"})
    with pytest.raises(ValueError):
        DriftInjection(kind="usage_shift", start=date(2025, 1, 1), magnitude=-1.5)
    with pytest.raises(ValueError):
        DriftInjection("usage_shift", date(2025, 1, 1), 0.1, segment={"plan": "platinum"})


# --- evaluation truth ---------------------------------------------------------------------------


def test_truth_is_separate_complete_and_bounded(small_run: Path, tmp_path: Path) -> None:
    assert EVALUATION_DIR not in SAAS_FEEDS and EVALUATION_DIR.startswith("_")
    assert truth_path(small_run, SMALL.start_date).exists()
    truth = _truth(small_run)
    assert truth.schema == pl.Schema(CHURN_TRUTH_COLUMNS)
    assert truth.n_unique("as_of_date") == SMALL.days
    for column in ("churn_probability_30d", "daily_hazard"):
        assert truth[column].is_between(0.0, 1.0).all()
    assert (truth["churn_probability_30d"] >= truth["daily_hazard"]).all()

    simulate(SMALL, tmp_path, last_day=3, write_truth=False)
    assert not (tmp_path / EVALUATION_DIR).exists()


# --- behaviour and documented rates -------------------------------------------------------------


def test_cancelled_customers_go_silent(medium_run: Path) -> None:
    cancels = _cancellations(medium_run)
    assert cancels.height > 50
    assert cancels["customer_id"].is_unique().all()
    checks = {
        "usage": "usage_date",
        "invoices": "issued_at",
        "payments": "attempted_at",
        "tickets": "opened_at",
    }
    for source, column in checks.items():
        frame = _load(medium_run, source).join(cancels, on="customer_id")
        when = frame[column].dt.date() if frame.schema[column] == TIMESTAMP else frame[column]
        assert (when < frame["cancel_date"]).all(), source
    truth = _truth(medium_run).join(cancels, on="customer_id")
    assert (truth["as_of_date"] < truth["cancel_date"]).all()


def test_activity_follows_signup_and_invoices(medium_run: Path) -> None:
    signups = (
        _load(medium_run, "subscription_events")
        .filter(pl.col("event_type") == "signup")
        .select("customer_id", signed_up_at="event_at")
    )
    for source, column in {"invoices": "issued_at", "tickets": "opened_at"}.items():
        frame = _load(medium_run, source).join(signups, on="customer_id")
        assert frame.height > 0 and (frame[column] > frame["signed_up_at"]).all(), source
    invoices = _load(medium_run, "invoices")
    first_attempts = _load(medium_run, "payments").filter(pl.col("attempt") == 1)
    paired = invoices.join(first_attempts, on="invoice_id", suffix="_payment")
    assert paired.height == invoices.height
    assert (paired["attempted_at"] > paired["issued_at"]).all()
    assert (paired["amount"] == paired["amount_payment"]).all()
    assert (invoices["period_end"] > invoices["period_start"]).all()


def test_monthly_churn_is_in_documented_band(medium_run: Path) -> None:
    truth, cancels = _truth(medium_run), _cancellations(medium_run)
    rates = []
    for start in range(30, MEDIUM.days - 30, 30):  # the first month is a warm-up
        window_start = MEDIUM.date_of(start)
        at_risk = truth.filter(pl.col("as_of_date") == window_start - timedelta(days=1))
        churned = at_risk.join(cancels, on="customer_id").filter(
            pl.col("cancel_date") < window_start + timedelta(days=30)
        )
        rates.append(churned.height / at_risk.height)
    assert all(0.02 <= rate <= 0.05 for rate in rates), rates


def test_payment_failure_and_ticket_rates(medium_run: Path) -> None:
    payments = _load(medium_run, "payments")
    failure_rate = (payments["status"] == "failed").mean()
    assert 0.03 <= failure_rate <= 0.08
    assert payments.filter(pl.col("status") == "failed")["failure_reason"].null_count() == 0
    retries = payments.filter(pl.col("attempt") > 1)
    assert retries.height > 0 and retries["invoice_id"].is_in(payments["invoice_id"]).all()

    tickets = _load(medium_run, "tickets")
    customer_months = _truth(medium_run).height / 30
    opened = tickets.filter(pl.col("status") == "open")
    assert 0.2 <= opened.height / customer_months <= 0.6
    resolved = tickets.filter(pl.col("status") == "resolved")
    assert resolved["ticket_id"].is_in(opened["ticket_id"]).all()
    assert resolved["csat"].drop_nulls().is_between(1, 5).all()


def test_signups_arrive_and_grow_the_base(medium_run: Path) -> None:
    events = _load(medium_run, "subscription_events")
    signups = events.filter(pl.col("event_type") == "signup")
    expected = MEDIUM.signup_rate * MEDIUM.customers * MEDIUM.days
    assert 0.8 * expected <= signups.height <= 1.2 * expected
    assert (signups["customer_id"] > f"C{MEDIUM.customers:07d}").all()
    customers = _load(medium_run, "customers")
    assert signups["customer_id"].is_in(customers["customer_id"]).all()
    first_day = customers.filter(pl.col("updated_at").dt.date() == MEDIUM.start_date)
    assert first_day["customer_id"].n_unique() >= MEDIUM.customers
    truth = _truth(medium_run)
    sizes = truth.group_by("as_of_date").len().sort("as_of_date")["len"]
    assert sizes[-1] > 0.9 * MEDIUM.customers


def test_failed_payments_raise_churn(medium_run: Path) -> None:
    truth, cancels = _truth(medium_run), _cancellations(medium_run)
    payments = _load(medium_run, "payments").with_columns(day=pl.col("attempted_at").dt.date())
    samples = []
    for offset in range(30, MEDIUM.days - 30, 7):
        as_of = MEDIUM.date_of(offset)
        failed = payments.filter(
            (pl.col("status") == "failed") & pl.col("day").is_between(as_of - timedelta(29), as_of)
        )["customer_id"]
        cohort = truth.filter(pl.col("as_of_date") == as_of).select(
            "customer_id", failed=pl.col("customer_id").is_in(failed.implode())
        )
        horizon = pl.col("cancel_date").is_between(as_of + timedelta(1), as_of + timedelta(30))
        samples.append(
            cohort.join(cancels, on="customer_id", how="left").with_columns(
                churned=horizon.fill_null(False)
            )
        )
    rates = pl.concat(samples).group_by("failed").agg(pl.col("churned").mean(), pl.len())
    rate = dict(zip(rates["failed"], rates["churned"], strict=True))
    assert rate[True] > 2 * rate[False], rates


# --- drift ----------------------------------------------------------------------------------------

DRIFT_BASE = SimulationConfig(customers=400, start_date=date(2025, 1, 1), days=66, seed=21)
DRIFT_START = date(2025, 2, 15)


def _with_drift(kind: str, magnitude: float) -> SimulationConfig:
    drift = [DriftInjection(kind=kind, start=DRIFT_START, magnitude=magnitude)]  # type: ignore[arg-type]
    return SimulationConfig(
        customers=DRIFT_BASE.customers,
        start_date=DRIFT_BASE.start_date,
        days=DRIFT_BASE.days,
        seed=DRIFT_BASE.seed,
        drift=drift,
    )


@pytest.fixture(scope="module")
def drift_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    runs = {
        "none": DRIFT_BASE,
        "usage": _with_drift("usage_shift", -0.35),
        "price": _with_drift("price_change", 0.15),
    }
    roots = {}
    for name, cfg in runs.items():
        roots[name] = tmp_path_factory.mktemp(f"drift_{name}")
        simulate(cfg, roots[name], write_truth=False)
    return roots


def _after(frame: pl.DataFrame, column: str) -> pl.DataFrame:
    when = frame[column].dt.date() if frame.schema[column] == TIMESTAMP else frame[column]
    return frame.filter(when >= DRIFT_START)


def test_usage_shift_scales_usage_from_its_start(drift_runs: dict[str, Path]) -> None:
    before = DRIFT_START - timedelta(days=1)
    for source in ("usage", "invoices"):
        assert (
            landing_path(drift_runs["usage"], SAAS_FEEDS[source], before).read_bytes()
            == landing_path(drift_runs["none"], SAAS_FEEDS[source], before).read_bytes()
        )
    base = _after(_load(drift_runs["none"], "usage"), "usage_date")
    shifted = _after(_load(drift_runs["usage"], "usage"), "usage_date")
    for metric in ("active_users", "sessions", "minutes"):
        ratio = shifted[metric].sum() / base[metric].sum()
        assert ratio == pytest.approx(0.65, abs=0.05), metric


def test_price_change_raises_invoice_amounts(drift_runs: dict[str, Path]) -> None:
    base = _after(_load(drift_runs["none"], "invoices"), "issued_at")
    priced = _after(_load(drift_runs["price"], "invoices"), "issued_at")
    joined = base.join(priced, on="invoice_id", suffix="_priced")
    assert joined.height > 0.8 * base.height
    ratio = (joined["amount_priced"] / joined["amount"]).median()
    assert ratio == pytest.approx(1.15, abs=0.005)
    events = _load(drift_runs["price"], "subscription_events")
    repriced = events.filter(pl.col("event_type") == "price_change")
    assert repriced.height > 0 and (repriced["event_at"].dt.date() == DRIFT_START).all()


def test_churn_risk_multiplies_the_segment_odds_from_its_start(tmp_path: Path) -> None:
    """A concept shift: from its start, the true daily odds of the segment's customers are × (1
    + magnitude) on the same inputs, nobody else's change, and nothing before it; the landing
    files before the start are byte-identical; the world's record round-trips the drift."""
    shift = DriftInjection("churn_risk", DRIFT_START, 4.0, segment={"region": "EMEA"})
    shifted = SimulationConfig(
        customers=DRIFT_BASE.customers,
        start_date=DRIFT_BASE.start_date,
        days=DRIFT_BASE.days,
        seed=DRIFT_BASE.seed,
        drift=[shift],
    )
    assert SimulationConfig.from_identity(shifted.identity(), shifted.days) == shifted
    roots = {"none": tmp_path / "none", "risk": tmp_path / "risk"}
    simulate(DRIFT_BASE, roots["none"])
    simulate(shifted, roots["risk"])
    before = DRIFT_START - timedelta(days=1)
    for feed in SAAS_FEEDS.values():
        assert (
            landing_path(roots["risk"], feed, before).read_bytes()
            == landing_path(roots["none"], feed, before).read_bytes()
        ), feed.name
    regions = _load(roots["none"], "customers").group_by("customer_id").agg(pl.col("region").last())
    truth = {
        name: _truth(root)
        .filter(pl.col("as_of_date").is_between(before, DRIFT_START))
        .select("customer_id", "as_of_date", pl.col("daily_hazard").alias(name))
        for name, root in roots.items()
    }
    both = (
        truth["none"]
        .join(truth["risk"], on=["customer_id", "as_of_date"])
        .join(regions, on="customer_id")
    )
    odds = both.with_columns(
        ratio=(pl.col("risk") / (1 - pl.col("risk"))) / (pl.col("none") / (1 - pl.col("none")))
    )
    start = odds.filter(pl.col("as_of_date") == DRIFT_START)
    emea = start.filter(pl.col("region") == "EMEA")["ratio"]
    others = start.filter(pl.col("region") != "EMEA")["ratio"]
    assert emea.len() > 20 and others.len() > 20
    assert emea.to_numpy() == pytest.approx(5.0, rel=1e-9)
    assert others.to_numpy() == pytest.approx(1.0, rel=1e-9)
    assert odds.filter(pl.col("as_of_date") == before)["ratio"].to_numpy() == pytest.approx(1.0)
