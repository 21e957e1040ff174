"""Empty inputs through the ingest and feature layers of a small world built by the real assets.

* An empty landing day (every feed delivered, with no rows): bronze replaces the day's partition
  with nothing (a commit: the day is ingested), silver touches no key, and the features of the
  day still hold every active customer (nothing new happened to them).
* A day without any active customer (before the first signup): every feature table's frame is
  empty and typed as the table.
* A training-set window without matured labels: refused naming the label table, its version
  and the window.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from dagster import AssetsDefinition, DagsterInstance, materialize

from feature_repo.config import feature_store
from lakehouse.features.training_set import build_training_set
from lakehouse.features.views import build_feature_batch
from lakehouse.sources.contract import landing_path
from lakehouse.sources.writer import write_frame
from models.usecase import load_use_cases
from orchestration.ingest.assets import source_assets
from orchestration.resources import LakehouseResource, LandingResource
from orchestration.settings import WORLD
from tests.world import churn, churn_feature_assets, run_days

DAYS = 20
CHURN = churn()
SOURCE = CHURN.source
EMPTY_DAY = WORLD.start_date + timedelta(days=DAYS)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("empty-landing")
    assert run_days(root, DAYS, customers=40, seed=4).success
    return root


def _run_day(root: Path, assets: list[AssetsDefinition]) -> bool:
    return materialize(
        [*source_assets(SOURCE), *assets],
        resources={
            "lakehouse": LakehouseResource(uri=str(root / "lake")),
            "landing": LandingResource(path=str(root / "landing")),
        },
        instance=DagsterInstance.ephemeral(),
        partition_key=EMPTY_DAY.isoformat(),
        raise_on_error=False,
    ).success


def test_an_empty_landing_day_gives_empty_bronze_unchanged_silver_and_full_features(
    world: Path,
) -> None:
    lake = load_use_cases().lakehouse(world / "lake")
    for feed in SOURCE.tables.feeds.values():
        path = landing_path(world / "landing", feed, EMPTY_DAY)
        write_frame(pl.DataFrame(schema=feed.schema), path, feed.file_format)
    bronze = {name: lake.version(name) for name in SOURCE.tables.bronze}
    silver = {name: lake.read(name) for name in SOURCE.tables.silver}
    population = CHURN.features.population_table
    before = lake.read(population, where=pl.col("feature_date") == EMPTY_DAY - timedelta(days=1))

    assert _run_day(world, churn_feature_assets())

    for name, version in bronze.items():
        assert lake.version(name) == (version or 0) + 1, name  # the day is ingested
        day = lake.read(name, where=pl.col("_batch_date") == EMPTY_DAY)
        assert day.is_empty() and day.schema == lake.catalog[name].polars_schema
    for name, frame in silver.items():
        assert lake.read(name).sort(frame.columns).equals(frame.sort(frame.columns)), name
    key = CHURN.entity.join_key
    for table in CHURN.tables.feature_tables:
        day = lake.read(table, where=pl.col("feature_date") == EMPTY_DAY)
        assert day.schema == CHURN.table_spec(table).polars_schema
        assert sorted(day[key]) == sorted(before[key]), table


def test_a_day_without_active_customers_gives_typed_empty_feature_tables(world: Path) -> None:
    lake = load_use_cases().lakehouse(world / "lake")
    spec = CHURN.features
    # The simulated customers have signed up before the world starts: the day before the first.
    [customers] = [
        name
        for name, spec in SOURCE.tables.silver.items()
        if spec.primary_key == (CHURN.entity.join_key,) and "signup_date" in spec.schema
    ]
    first_signup = lake.read(customers)["signup_date"].min()
    assert isinstance(first_signup, date)
    before_start = first_signup - timedelta(days=1)
    batch = build_feature_batch(
        spec.builder,
        lake,
        [before_start],
        spec.views,
        spec.ratios,
        CHURN.entity.join_key,
        created_at=datetime.now(UTC),
    )
    assert sorted(batch.tables) == sorted(CHURN.tables.feature_tables)
    for name, frame in batch.tables.items():
        assert frame.is_empty(), name
        assert frame.schema == lake.catalog[name].polars_schema, name


def test_an_empty_training_set_window_names_the_label_table(world: Path) -> None:
    lake = load_use_cases().lakehouse(world / "lake")
    definition = CHURN.label.definition
    version = lake.version(definition.table)
    after_all = WORLD.start_date + timedelta(days=DAYS + 30)
    with pytest.raises(
        ValueError,
        match=rf"{definition.table} v{version} has no matured labels with as-of ≥ {after_all}",
    ):
        build_training_set(
            lake,
            feature_store(lake.uri),
            labels=definition,
            spec=CHURN.table_spec(CHURN.tables.training_set),
            feature_service=CHURN.features.service,
            first_as_of=after_all,
        )
