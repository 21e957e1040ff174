"""A day with no active entity: scoring refuses it naming the table and day and writes nothing;
the online refresh of that day writes nothing and leaves the served values as they were;
monitoring of it names the day and the scoring-runs table it found no run in.

The day is what the features asset writes when no customer is active: every feature table's
partition of the day replaced by zero rows (a commit, so the day counts as built).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest
from dagster import DagsterInstance, materialize

from feature_repo.config import feature_store
from models.monitoring.monitor import MonitoringError, drift_and_diagnosis
from models.monitoring.policy import MonitoringSettings
from models.scoring.batch import (
    ScoringError,
    ScoringRun,
    load_model,
    pin_feature_versions,
    score_day,
)
from models.scoring.online import compare_online
from models.scoring.policy import ScoringPolicy
from orchestration.features.feast_assets import feast_online_store
from orchestration.scoring.assets import prediction_online_asset
from tests.scored_world import ScoredWorld
from tests.world import churn

CHURN = churn()
SCORING = CHURN.tables.scoring
WRITTEN = (SCORING.predictions, SCORING.explanations, SCORING.scoring_runs)


@pytest.fixture(scope="module")
def empty_day(scored_world: ScoredWorld) -> date:
    """The day after the world's last: built, with no active customer."""
    day = max(scored_world.days) + timedelta(days=1)
    for table in CHURN.tables.feature_tables:
        spec = CHURN.table_spec(table)
        scored_world.lake.replace(
            table, pl.DataFrame(schema=spec.polars_schema), partition={"feature_date": [day]}
        )
    return day


def _versions(world: ScoredWorld) -> dict[str, int | None]:
    return {name: world.lake.version(name) for name in WRITTEN}


def test_scoring_a_day_without_active_entities_names_the_table_and_day(
    scored_world: ScoredWorld, empty_day: date
) -> None:
    world = scored_world
    versions = pin_feature_versions(world.lake, CHURN.tables.feature_tables)
    population = CHURN.features.population_table
    run = ScoringRun("empty:x", empty_day, "empty", "test", versions, datetime.now(UTC))
    before = _versions(world)
    with pytest.raises(
        ScoringError,
        match=rf"{population} v{versions[population]} has no rows for {empty_day}: "
        r"no active customer_id",
    ):
        score_day(
            world.lake,
            feature_store(world.lake.uri, pins=versions),
            CHURN,
            load_model(world.registry),
            run,
            ScoringPolicy(),
        )
    assert _versions(world) == before

    result = world.score(empty_day, raise_on_error=False)
    assert not result.success
    assert _versions(world) == before


def test_the_online_refresh_of_a_day_without_scores_writes_nothing(
    scored_world: ScoredWorld, empty_day: date
) -> None:
    world = scored_world
    store = feature_store(world.lake.uri)
    assert compare_online(store, world.lake, SCORING).entities == []
    result = materialize(
        [prediction_online_asset(CHURN)],
        resources=world.resources(),
        instance=DagsterInstance.ephemeral(),
        partition_key=empty_day.isoformat(),
    )
    [materialization] = result.asset_materializations_for_node("feast__churn_prediction_online")
    assert materialization.metadata["entities_written"].value == 0
    # The values served before stay served: nothing was blanked.
    diff = compare_online(store, world.lake, SCORING)
    assert diff.checked > 0 and diff.entities == []


def _online_features(world: ScoredWorld, entities: list[str]) -> dict[str, list[object]]:
    features = [f"{v.name}:{c}" for v in CHURN.features.views for c in v.columns]
    rows = [{CHURN.entity.join_key: e} for e in entities]
    store = feature_store(world.lake.uri)
    return store.get_online_features(features=features, entity_rows=rows).to_dict()


def _materialize_features(world: ScoredWorld, day: date) -> bool:
    return materialize(
        [feast_online_store(CHURN)],
        resources=world.resources(),
        instance=DagsterInstance.ephemeral(),
        partition_key=day.isoformat(),
    ).success


def test_the_feature_online_refresh_of_a_day_without_rows_keeps_the_values(
    scored_world: ScoredWorld, empty_day: date
) -> None:
    world, last = scored_world, max(scored_world.days)
    population = CHURN.features.population_table
    key = CHURN.entity.join_key
    entities = world.lake.read(population, where=pl.col("feature_date") == last)[key].to_list()
    assert _materialize_features(world, last)
    before = _online_features(world, entities)
    assert all(v is not None for v in before["plan"])  # a never-null feature: values are there
    assert _materialize_features(world, empty_day)
    assert _online_features(world, entities) == before


def test_monitoring_a_day_without_a_scoring_run_names_the_day_and_table(
    scored_world: ScoredWorld, empty_day: date
) -> None:
    with pytest.raises(
        MonitoringError,
        match=rf"no scoring run with model alias 'champion' for {empty_day} in "
        rf"{SCORING.scoring_runs}",
    ):
        drift_and_diagnosis(
            scored_world.lake, scored_world.registry, CHURN, empty_day, MonitoringSettings()
        )
