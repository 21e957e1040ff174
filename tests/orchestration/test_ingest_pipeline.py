"""In-process materialization of sources → bronze → silver on a tiny simulated world."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest

from lakehouse.ingest.tables import SilverFlow
from lakehouse.sources.contract import landing_path, list_landing_files
from lakehouse.sources.saas.contract import SAAS_FEEDS
from lakehouse.storage import Lakehouse
from models.usecase import project_lakehouse
from orchestration.ingest.assets import source_assets
from orchestration.settings import WORLD
from tests.world import churn, ingest_assets, run_days

DAYS = 6
FIRST = WORLD.start_date
LAST = FIRST + timedelta(days=DAYS - 1)
ASSETS = ingest_assets()
SOURCE_ASSETS = source_assets(churn().source)


def _run(tmp_path: Path, first: date = FIRST, assets=ASSETS):
    return run_days(tmp_path, DAYS, customers=60, seed=3, first=first, assets=assets)


def _counts(lake: Lakehouse) -> dict[str, int]:
    return {
        spec.name: lake.read(spec.name).height for spec in lake.catalog if lake.exists(spec.name)
    }


@pytest.fixture
def built(tmp_path: Path) -> tuple[Path, Lakehouse]:
    result = _run(tmp_path)
    assert result.success
    return tmp_path, project_lakehouse(tmp_path / "lake")


def test_every_landing_row_reaches_bronze_with_lineage(built: tuple[Path, Lakehouse]) -> None:
    tmp_path, lake = built
    for source in SAAS_FEEDS:
        landed = sum(
            len(pl.read_parquet(f)) if f.suffix == ".parquet" else _text_rows(f)
            for f in list_landing_files(tmp_path / "landing", source)
        )
        bronze = lake.read(f"bronze.{source}")
        assert bronze.height == landed, source
        commits = lake.history(f"bronze.{source}")
        assert [c["dagster.partition"] for c in commits] == [f"{FIRST}..{LAST}"]
        assert commits[0]["scorehouse.operation"] == "replace"
        assert bronze["_source_file"].null_count() == 0


def _text_rows(path: Path) -> int:
    if path.suffix == ".csv":
        return len(pl.read_csv(path, infer_schema=False))
    return sum(1 for line in path.read_text().splitlines() if line.strip())


def test_silver_has_one_row_per_key_with_latest_state(built: tuple[Path, Lakehouse]) -> None:
    _, lake = built
    customers = lake.read("silver.customers")
    bronze_customers = lake.read("bronze.customers")
    assert customers.height == bronze_customers["customer_id"].n_unique()
    latest = bronze_customers.sort("updated_at").unique("customer_id", keep="last")
    joined = customers.join(latest, on="customer_id", suffix="_bronze")
    assert (joined["updated_at"] == joined["updated_at_bronze"]).all()
    tickets = lake.read("silver.tickets")
    assert tickets["ticket_id"].is_unique().all()
    usage = lake.read("silver.usage_daily")
    assert usage.height == lake.read("bronze.usage").height


def test_materializations_report_table_metadata(tmp_path: Path) -> None:
    result = _run(tmp_path)
    events = result.get_asset_materialization_events()
    silver = [e for e in events if e.asset_key.path[0] == "silver"]
    assert silver
    metadata = silver[0].materialization.metadata
    assert {"dagster/row_count", "dagster/column_schema", "delta_version", "preview"} <= set(
        metadata
    )


def test_rerunning_the_same_days_leaves_the_same_rows(built: tuple[Path, Lakehouse]) -> None:
    tmp_path, lake = built
    before = _counts(lake)
    assert _run(tmp_path).success
    assert _counts(lake) == before


def test_bad_landing_file_fails_the_run_and_commits_nothing(built: tuple[Path, Lakehouse]) -> None:
    tmp_path, lake = built
    versions = {spec.name: lake.version(spec.name) for spec in lake.catalog}
    before = lake.read("bronze.payments")
    bad = landing_path(tmp_path / "landing", SAAS_FEEDS["payments"], LAST)
    bad.write_text(bad.read_text().replace('"amount":', '"amount":-', 1))  # a negative amount
    result = _run(tmp_path, LAST, assets=SOURCE_ASSETS)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = failure.step_failure_data.error.cause.message
    assert (
        "payments/date=" in message and "column 'amount': 1 negative rows (rule: >= 0)" in message
    )
    assert lake.version("bronze.payments") == versions["bronze.payments"]
    assert lake.read("bronze.payments").equals(before)
    assert lake.version("silver.payments") == versions["silver.payments"]


def test_future_dated_row_fails_the_run_and_commits_nothing(
    built: tuple[Path, Lakehouse],
) -> None:
    tmp_path, lake = built
    versions = {spec.name: lake.version(spec.name) for spec in lake.catalog}
    path = landing_path(tmp_path / "landing", SAAS_FEEDS["tickets"], LAST)
    tickets = pl.read_csv(path, infer_schema=False)
    assert tickets.height
    future = tickets.with_columns(
        pl.when(pl.int_range(pl.len()) == 0)
        .then(pl.lit("2031-01-01T00:00:00Z"))
        .otherwise(pl.col("updated_at"))
        .alias("updated_at")
    )
    future.write_csv(path)
    result = _run(tmp_path, LAST, assets=SOURCE_ASSETS)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = failure.step_failure_data.error.cause.message
    assert "tickets/date=" in message and "column 'updated_at': 1 rows at or after" in message
    assert f"(rule: not after delivery day {LAST} + 1 day" in message
    for table in ("bronze.tickets", "silver.tickets"):  # other feeds' assets still run
        assert lake.version(table) == versions[table]


def _reference(flow: SilverFlow, bronze: pl.DataFrame) -> pl.DataFrame:
    """Brute-force silver: all bronze rows, the latest per key (timestamp, then landing day)."""
    order = [c for c in (flow.feed.timestamp_column, "_batch_date") if c is not None]
    rows = bronze.with_columns(expr.alias(name) for name, expr in flow.derived.items())
    key = list(flow.silver.primary_key)
    return rows.sort(order).group_by(key).last().select(list(flow.silver.schema)).sort(key)


def _rewrite_csv(path: Path, edit: Callable[[pl.DataFrame], pl.DataFrame]) -> None:
    edit(pl.read_csv(path, infer_schema=False)).write_csv(path)


def test_corrected_redelivery_replaces_the_days_contribution_in_silver(tmp_path: Path) -> None:
    days = [FIRST + timedelta(days=i) for i in range(3)]
    assert run_days(tmp_path, 3, customers=800, seed=3).success
    landing = tmp_path / "landing"
    lake = project_lakehouse(tmp_path / "lake")

    # Day 2 again: one ticket resolved that day (opened earlier) and one opened that day are
    # withdrawn, one ticket's severity and one profile's seats are corrected.
    day2 = landing_path(landing, SAAS_FEEDS["tickets"], days[1])
    tickets = pl.read_csv(day2, infer_schema=False)
    resolved = tickets.filter(
        (pl.col("status") == "resolved") & (pl.col("opened_at") < days[1].isoformat())
    )["ticket_id"]
    opened = tickets.filter(
        (pl.col("status") == "open") & ~pl.col("ticket_id").is_in(resolved.implode())
    )["ticket_id"]
    assert len(resolved) and len(opened) >= 2, "the world must have tickets of both kinds"
    fallback, withdrawn, corrected = resolved[0], opened[0], opened[1]
    _rewrite_csv(
        day2,
        lambda f: f.filter(~pl.col("ticket_id").is_in([fallback, withdrawn])).with_columns(
            pl.when(pl.col("ticket_id") == corrected)
            .then(pl.lit("urgent"))
            .otherwise(pl.col("severity"))
            .alias("severity")
        ),
    )
    profiles = landing_path(landing, SAAS_FEEDS["customers"], days[1])
    later = pl.read_csv(landing_path(landing, SAAS_FEEDS["customers"], days[2]), infer_schema=False)
    changed = (
        pl.read_csv(profiles, infer_schema=False)
        .filter(~pl.col("customer_id").is_in(later["customer_id"].implode()))["customer_id"]
        .last()
    )
    _rewrite_csv(
        profiles,
        lambda f: f.with_columns(
            pl.when(pl.col("customer_id") == changed)
            .then(pl.lit("4321"))
            .otherwise(pl.col("seats"))
            .alias("seats")
        ),
    )
    assert run_days(tmp_path, 2, first=days[1], assets=SOURCE_ASSETS).success

    for flow in churn().source.tables.flows.values():
        expected = _reference(flow, lake.read(flow.bronze))
        silver = lake.read(flow.silver.name).sort(list(flow.silver.primary_key))
        assert silver.equals(expected), flow.silver.name
    tickets = {row["ticket_id"]: row for row in lake.read("silver.tickets").to_dicts()}
    assert withdrawn not in tickets
    assert tickets[fallback]["status"] == "open"  # back to its row of the day it was opened
    assert tickets[corrected]["severity"] == "urgent"
    customers = lake.read("silver.customers").filter(pl.col("customer_id") == changed)
    assert (
        customers["seats"].to_list() == [4321]
        or lake.read("bronze.customers")
        .filter((pl.col("customer_id") == changed) & (pl.col("_batch_date") > days[1]))
        .height
    )


BACKFILL_DAYS, BAD_DAY = 40, 35


def test_a_bad_file_late_in_a_backfill_commits_no_day(tmp_path: Path) -> None:
    """A 40-day backfill spans two chunks of files; the bad files of day 35 are in the second,
    after the first chunk's files were written. Every bronze table commits all its days or none,
    and silver, downstream, never runs."""
    first = run_days(tmp_path, BACKFILL_DAYS, customers=30, seed=3, assets=ASSETS)
    assert first.success
    lake = project_lakehouse(tmp_path / "lake")
    source = churn().source.tables  # the SaaS source: its bronze and silver tables
    tables = sorted([*source.bronze, *source.silver])
    versions = {name: lake.version(name) for name in tables}
    bronze = {name: lake.read(name) for name in tables if name.startswith("bronze.")}
    assert all(v is not None for v in versions.values()) and len(bronze) == len(SAAS_FEEDS)

    bad_day = FIRST + timedelta(days=BAD_DAY - 1)
    bad = {
        name: landing_path(tmp_path / "landing", feed, bad_day) for name, feed in SAAS_FEEDS.items()
    }
    for path in bad.values():
        path.write_text("not a landing file\n")
    again = run_days(tmp_path, BACKFILL_DAYS, customers=30, seed=3, assets=SOURCE_ASSETS)
    assert not again.success
    failures = {
        e.step_key: e.step_failure_data.error.cause.message
        for e in again.all_events
        if e.event_type_value == "STEP_FAILURE"
    }
    assert len(failures) == len(SAAS_FEEDS)  # every bronze step; no silver step ran
    for name, path in bad.items():
        message = next(m for step, m in failures.items() if step.startswith(f"bronze__{name}"))
        assert f"landing file {path} rejected" in message
    assert {name: lake.version(name) for name in tables} == versions
    for name, frame in bronze.items():
        assert lake.read(name).equals(frame), name
