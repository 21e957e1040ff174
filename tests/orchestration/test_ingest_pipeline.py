"""In-process materialization of sources → bronze → silver on a tiny simulated world."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest

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


BACKFILL_DAYS, BAD_DAY = 40, 35


def test_a_bad_file_late_in_a_backfill_commits_no_day(tmp_path: Path) -> None:
    """A 40-day backfill spans two chunks of files; the bad files of day 35 are in the second,
    after the first chunk's files were written. Every bronze table commits all its days or none,
    and silver, downstream, never runs."""
    first = run_days(tmp_path, BACKFILL_DAYS, customers=30, seed=3, assets=ASSETS)
    assert first.success
    lake = project_lakehouse(tmp_path / "lake")
    tables = [spec.name for spec in lake.catalog if spec.layer in ("bronze", "silver")]
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
