"""Scoring fanned out over entity buckets: the bucket hash against FNV-1a by hand, a bucketed run
against the one-bucket run (bit for bit), eight buckets racing into one table (nothing lost or
duplicated), a bucket attempt after a failure (nothing written twice), and exact replay."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime

import polars as pl
import pytest

from feature_repo.config import feature_store
from models.lifecycle.registry import CHAMPION
from models.scoring.batch import ScoringRun, load_model, pin_feature_versions, population
from models.scoring.buckets import entity_bucket, fnv1a_32, record_bucketed_run, score_bucket
from models.scoring.replay import replay_run
from tests.models.scoring.fanout import score_buckets_concurrently
from tests.scored_world import ScoredWorld
from tests.world import churn

CHURN = churn()
TABLES = CHURN.tables.scoring
COMPUTED = [  # every column a run computes (ids and run identity differ between runs)
    "customer_id", "as_of_date", "score", "risk_band", "decision", "missing_feature_count",
    "reason_codes", "reason_features", "reason_values", "reason_contributions", "model_version",
    "model_sha256", "source_versions",
]  # fmt: skip


def fnv1a_by_hand(text: str) -> int:
    value = 0x811C9DC5
    for byte in text.encode("utf-8"):
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


def test_the_bucket_of_an_id_is_fnv1a_of_its_utf8_bytes() -> None:
    assert fnv1a_by_hand("a") == 0xE40C292C and fnv1a_by_hand("foobar") == 0xBF9CF968
    rng = random.Random(0)
    ids = ["", "a", "foobar", "é日本", *(f"C{rng.randrange(10**9):09d}" for _ in range(5000))]
    assert fnv1a_32(pl.Series(ids)).tolist() == [fnv1a_by_hand(i) for i in ids]
    counts = entity_bucket(pl.Series(ids[4:]), 8).value_counts()["count"]
    assert counts.len() == 8 and counts.min() > 5000 / 8 * 0.85  # spread evenly
    with pytest.raises(ValueError, match="null ids"):
        fnv1a_32(pl.Series(["a", None]))


def _run_of(world: ScoredWorld, result) -> dict:
    runs = world.lake.read(TABLES.scoring_runs, where=pl.col("dagster_run_id") == result.run_id)
    [record] = runs.to_dicts()
    return record


def _predictions(world: ScoredWorld, scoring_run_id: str) -> pl.DataFrame:
    where = pl.col("scoring_run_id") == scoring_run_id
    return world.lake.read(TABLES.predictions, where=where).sort("customer_id")


def _replays(world: ScoredWorld, record: dict) -> None:
    report = replay_run(
        world.lake, CHURN, lambda pins: feature_store(world.lake.uri, pins=pins),
        world.registry, record,
    )  # fmt: skip
    assert report.matches, report.differences
    assert report.rows == record["rows"]


def _bucket_commits(world: ScoredWorld, table: str, scoring_run_id: str) -> list[str]:
    return sorted(
        c["scorehouse.bucket"]
        for c in world.lake.history(table)
        if c.get("scorehouse.scoring_run_id") == scoring_run_id and "scorehouse.bucket" in c
    )


def test_a_run_in_eight_buckets_equals_the_one_bucket_run(scored_world: ScoredWorld) -> None:
    day = scored_world.days[-1]
    runs = {}
    for buckets in (1, 8):
        config = {"ops": {"churn_predictions": {"config": {"buckets": buckets}}}}
        runs[buckets] = _run_of(scored_world, scored_world.score(day, run_config=config))
    one, eight = (_predictions(scored_world, runs[b]["scoring_run_id"]) for b in (1, 8))
    active = population(scored_world.lake, CHURN, day, pin_feature_versions(
        scored_world.lake, CHURN.tables.feature_tables))  # fmt: skip
    assert eight["customer_id"].to_list() == active["customer_id"].to_list()
    assert eight.select(COMPUTED).equals(one.select(COMPUTED))  # bit for bit
    assert runs[8]["rows"] == runs[1]["rows"] == active.height
    for table in (TABLES.predictions, TABLES.explanations):
        labels = _bucket_commits(scored_world, table, runs[8]["scoring_run_id"])
        assert labels == sorted(f"{b}/8" for b in range(8))
    _replays(scored_world, runs[8])


def _plan(world: ScoredWorld, name: str) -> tuple[ScoringRun, object]:
    model = load_model(world.registry, alias=CHAMPION)
    versions = pin_feature_versions(world.lake, CHURN.tables.feature_tables)
    run = ScoringRun(
        scoring_run_id=f"{name}:{world.days[-1]}",
        as_of=world.days[-1],
        dagster_run_id=name,
        code_version="test",
        source_versions=versions,
        scored_at=datetime.now(UTC),
    )
    return run, model


def test_eight_buckets_racing_into_one_table_lose_and_duplicate_nothing(
    scored_world: ScoredWorld,
) -> None:
    run, model = _plan(scored_world, "race")
    before = scored_world.lake.version(TABLES.predictions)
    results = score_buckets_concurrently(
        use_case=CHURN.name,
        lake=scored_world.lake.uri,
        tracking_uri=scored_world.registry.uri,
        model_version=model.version,
        alias=CHAMPION,
        run=run,
        policy=CHURN.scoring,
    )
    record_bucketed_run(
        scored_world.lake, CHURN, model, [run], CHURN.scoring, results, run.scored_at
    )
    active = population(scored_world.lake, CHURN, run.as_of, run.source_versions)
    for table in (TABLES.predictions, TABLES.explanations):
        rows = scored_world.lake.read(table, where=pl.col("scoring_run_id") == run.scoring_run_id)
        assert rows.height == active.height  # none lost
        assert rows["prediction_id"].n_unique() == rows.height  # none duplicated
        assert sorted(rows["customer_id"]) == active["customer_id"].to_list()
        assert _bucket_commits(scored_world, table, run.scoring_run_id) == [
            f"{b}/8" for b in range(8)
        ]
    assert scored_world.lake.version(TABLES.predictions) == before + 8
    [record] = scored_world.lake.read(
        TABLES.scoring_runs, where=pl.col("scoring_run_id") == run.scoring_run_id
    ).to_dicts()
    assert record["rows"] == active.height == sum(r.rows for r in results)
    assert record["predictions_version"] == max(r.predictions_version or 0 for r in results)
    _replays(scored_world, record)


def test_a_bucket_run_again_after_its_commit_writes_nothing_twice(
    scored_world: ScoredWorld,
) -> None:
    run, model = _plan(scored_world, "resumed")
    model = replace(model, alias=CHAMPION)
    store = feature_store(scored_world.lake.uri, pins=run.source_versions)
    first = score_bucket(scored_world.lake, store, CHURN, model, run, CHURN.scoring, 1, 3)
    version = scored_world.lake.version(TABLES.predictions)
    again = score_bucket(
        scored_world.lake, store, CHURN, model, run, CHURN.scoring, 1, 3, resume=True
    )
    assert again.resumed and not first.resumed
    assert (again.rows, again.predictions_version) == (first.rows, first.predictions_version)
    assert scored_world.lake.version(TABLES.predictions) == version  # nothing written
    fresh = score_bucket(
        scored_world.lake, store, CHURN, model, run, CHURN.scoring, 2, 3, resume=True
    )
    assert not fresh.resumed and fresh.rows > 0  # nothing earlier: scored as usual
    with pytest.raises(ValueError, match="every bucket of the day"):
        record_bucketed_run(
            scored_world.lake, CHURN, model, [run], CHURN.scoring, [first, fresh], run.scored_at
        )
