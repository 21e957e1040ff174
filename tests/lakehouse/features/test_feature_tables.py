"""The churn feature tables (builder ``saas_churn``) and labels against brute-force references
on a tiny simulated world."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from lakehouse.features.views import FeatureBatch, build_feature_batch
from lakehouse.storage import Lakehouse
from models.usecase import project_lakehouse
from orchestration.settings import WORLD
from tests.world import churn, run_days

DAYS = 75
CHURN = churn()
FEATURE_TABLES = CHURN.tables.feature_tables


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Lakehouse:
    root = tmp_path_factory.mktemp("world")
    result = run_days(root, DAYS, customers=80, seed=11)
    assert result.success
    return project_lakehouse(root / "lake")


def build_features(lake: Lakehouse, days: list[date]) -> FeatureBatch:
    spec = CHURN.features
    return build_feature_batch(
        spec.builder,
        lake,
        days,
        spec.views,
        spec.ratios,
        CHURN.entity.join_key,
        created_at=datetime.now(UTC),
    )


def build_labels(lake: Lakehouse, as_of: list[date]) -> pl.DataFrame:
    return CHURN.label.builder.build(lake, CHURN.label.definition, as_of)


def _day(offset: int) -> date:
    return WORLD.start_date + timedelta(days=offset)


def _features(lake: Lakehouse, day: date) -> pl.DataFrame:
    tables = [lake.read(name, where=pl.col("feature_date") == day) for name in FEATURE_TABLES]
    joined = tables[0]
    for other in tables[1:]:
        joined = joined.join(
            other.drop("event_timestamp", "created_timestamp"), on=["customer_id", "feature_date"]
        )
    return joined.sort("customer_id")


def test_one_row_per_subscribed_customer_per_day(lake: Lakehouse) -> None:
    day = _day(60)
    cancels = lake.read("silver.subscription_events", where=pl.col("event_type") == "cancel")
    cancelled = set(cancels.filter(pl.col("event_date") <= day)["customer_id"].to_list())
    signed = lake.read("silver.customers", where=pl.col("signup_date") <= day)
    expected = sorted(set(signed["customer_id"].to_list()) - cancelled)
    rows = _features(lake, day)
    assert rows["customer_id"].to_list() == expected
    assert (
        rows["event_timestamp"]
        == datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
    ).all()


def _window(frame: pl.DataFrame, cid: str, day: date, column: str, days: int) -> pl.DataFrame:
    """Rows of ``cid`` whose ``column`` falls in the ``days``-day window ending on ``day``."""
    col = pl.col(column).dt.date() if frame.schema[column] != pl.Date else pl.col(column)
    start = day - timedelta(days=days - 1)
    return frame.filter((pl.col("customer_id") == cid) & col.is_between(start, day))


def test_windows_match_a_brute_force_reference(lake: Lakehouse) -> None:
    day = _day(70)
    rows = _features(lake, day)
    usage = lake.read("silver.usage_daily")
    payments = lake.read("silver.payments")
    tickets = lake.read("silver.tickets")
    history = lake.read("silver.customer_history")
    customers = lake.read("silver.customers")
    for row in rows.sample(25, seed=1).iter_rows(named=True):
        cid = row["customer_id"]

        assert row["active_users_7d_mean"] == pytest.approx(
            _window(usage, cid, day, "usage_date", 7)["active_users"].sum() / 7
        )
        assert (
            row["sessions_30d_sum"] == _window(usage, cid, day, "usage_date", 30)["sessions"].sum()
        )
        failed = _window(payments, cid, day, "attempted_at", 30).filter(
            pl.col("status") == "failed"
        )
        assert row["failed_payments_30d"] == failed.height
        assert row["tickets_90d"] == _window(tickets, cid, day, "opened_at", 90).height
        profile = (
            history.filter((pl.col("customer_id") == cid) & (pl.col("updated_at").dt.date() <= day))
            .sort("updated_at")
            .tail(1)
        )
        assert row["plan"] == profile["plan"][0]
        assert row["seats"] == profile["seats"][0]
        assert row["mrr"] == pytest.approx(profile["monthly_price"][0])
        signup = customers.filter(pl.col("customer_id") == cid)["signup_date"][0]
        assert row["tenure_days"] == (day - signup).days


def test_features_do_not_depend_on_chunking(lake: Lakehouse) -> None:
    day = _day(66)
    alone = build_features(lake, [day]).tables
    for name, frame in alone.items():
        stored = lake.read(name, where=pl.col("feature_date") == day)
        assert (
            frame.drop("created_timestamp")
            .sort("customer_id")
            .equals(stored.drop("created_timestamp").sort("customer_id"))
        ), name


def test_later_data_never_changes_a_day_s_features(lake: Lakehouse, tmp_path: Path) -> None:
    day = _day(50)
    before = build_features(lake, [day]).tables
    # Copy silver into a scratch lakehouse and add activity on the next day.
    scratch = project_lakehouse(tmp_path / "lake")
    for spec in CHURN.source.tables.silver.values():
        scratch.append(spec.name, lake.read(spec.name))
    cid = before["features.customer_activity"]["customer_id"][0]
    late = (
        lake.read("silver.payments")
        .head(1)
        .with_columns(
            pl.lit(cid).alias("customer_id"),
            pl.lit("late-payment").alias("payment_id"),
            pl.lit("failed").alias("status"),
            pl.lit(
                datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1, hours=1)
            ).alias("attempted_at"),
        )
    )
    scratch.append("silver.payments", late)
    after = build_features(scratch, [day]).tables
    nxt = build_features(scratch, [day + timedelta(days=1)]).tables["features.customer_billing"]
    for name in FEATURE_TABLES:
        assert before[name].drop("created_timestamp").equals(after[name].drop("created_timestamp"))
    base = build_features(lake, [day + timedelta(days=1)]).tables["features.customer_billing"]
    changed = nxt.filter(pl.col("customer_id") == cid)["failed_payments_30d"][0]
    assert changed == base.filter(pl.col("customer_id") == cid)["failed_payments_30d"][0] + 1


def test_labels_match_a_brute_force_reference(lake: Lakehouse) -> None:
    as_of = _day(30)
    labels = build_labels(lake, [as_of]).sort("customer_id")
    stored = lake.read("labels.churn", where=pl.col("as_of_date") == as_of).sort("customer_id")
    assert labels.equals(stored)
    customers = lake.read("silver.customers")
    cancels = lake.read("silver.subscription_events", where=pl.col("event_type") == "cancel")
    cancel_date = dict(zip(cancels["customer_id"], cancels["event_date"], strict=True))
    expected = {}
    for cid, signup in zip(customers["customer_id"], customers["signup_date"], strict=True):
        cancelled = cancel_date.get(cid)
        if signup < as_of and (cancelled is None or cancelled >= as_of):
            expected[cid] = int(cancelled is not None and cancelled <= as_of + timedelta(days=29))
    assert dict(zip(labels["customer_id"], labels["churned_30d"], strict=True)) == expected
    assert 0 < sum(expected.values()) < len(expected)


def test_labels_are_only_written_once_matured(lake: Lakehouse) -> None:
    as_of_dates = lake.read("labels.churn")["as_of_date"].unique().sort()
    assert as_of_dates.min() == WORLD.start_date
    assert as_of_dates.max() == _day(DAYS - 30)


def test_ratios_are_computed_with_the_rows(lake: Lakehouse) -> None:
    rows = _features(lake, _day(70))
    attempts = rows["payment_attempts_90d"].cast(pl.Float64)
    expected = (rows["failed_payments_90d"] / attempts).to_list()
    for got, want, n in zip(rows["failed_payment_rate_90d"], expected, attempts, strict=True):
        assert got == (pytest.approx(want) if n else None)
    seats = rows["seats"].cast(pl.Float64)
    per_seat = (rows["tickets_30d"] / seats).to_list()
    for got, want, n in zip(rows["tickets_per_seat_30d"], per_seat, seats, strict=True):
        assert got == (pytest.approx(want) if n else None)
