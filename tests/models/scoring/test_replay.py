"""`scorehouse replay` recomputes a scoring run exactly, even after the world moved on."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from feature_repo.config import feature_store
from lakehouse.features.views import build_feature_batch
from lakehouse.maintenance import optimize
from models.lifecycle.registry import CHAMPION
from models.scoring.replay import find_runs, replay_run
from orchestration.cli import main
from tests.scored_world import ScoredWorld, train_and_register
from tests.world import churn

CHURN = churn()
FEATURE_TABLES = CHURN.tables.feature_tables


def _replay(world: ScoredWorld, record: dict):
    return replay_run(
        world.lake,
        CHURN,
        lambda pins: feature_store(world.lake.uri, pins=pins),
        world.registry,
        record,
    )


def _first_run(world: ScoredWorld) -> dict:
    runs = world.lake.read(CHURN.tables.scoring.scoring_runs).sort("finished_at")
    return runs.row(0, named=True)


def test_replay_matches_after_appends_compaction_and_a_new_champion(
    scored_world: ScoredWorld, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    world = scored_world
    record = _first_run(world)
    assert _replay(world, record).matches

    # Later data: the features of the scored day are rebuilt (new versions), then compacted.
    day = record["as_of_date"]
    spec = CHURN.features
    rebuilt = build_feature_batch(
        spec.builder,
        world.lake,
        [day],
        spec.views,
        spec.ratios,
        CHURN.entity.join_key,
        created_at=datetime.now(UTC),
    ).tables
    for name, frame in rebuilt.items():
        world.lake.replace(name, frame, partition={"feature_date": [day]})
        optimize(world.lake, name)
    # A new champion.
    newer = train_and_register(world.lake, world.registry, CHURN, seed=7)
    world.registry.set_alias(CHAMPION, newer)
    assert all(world.lake.version(n) > v for n, v in _versions(record).items())

    report = _replay(world, record)
    assert report.matches, report.differences
    assert report.rows == record["rows"]

    monkeypatch.setenv("SCOREHOUSE_LAKEHOUSE_URI", world.lake.uri)
    assert main(["replay", record["scoring_run_id"]]) == 0
    assert "exact match" in capsys.readouterr().out


def _versions(record: dict) -> dict[str, int]:
    import json

    return {k: v for k, v in json.loads(record["source_versions"]).items() if k in FEATURE_TABLES}


def test_replay_reports_each_difference(scored_world: ScoredWorld) -> None:
    world = scored_world
    record = _first_run(world)
    other = [v.version for v in world.registry.versions() if v.version != record["model_version"]]
    if not other:
        other = [train_and_register(world.lake, world.registry, CHURN, seed=3)]
    tampered = {**record, "model_version": other[0]}
    report = _replay(world, tampered)
    assert not report.matches
    assert any("ml.churn_predictions.score" in line for line in report.differences)
    assert any("ml.churn_predictions.model_version" in line for line in report.differences)


def test_unknown_run_is_a_clear_error(
    scored_world: ScoredWorld, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    assert find_runs(scored_world.lake, CHURN, "nope").is_empty()
    monkeypatch.setenv("SCOREHOUSE_LAKEHOUSE_URI", scored_world.lake.uri)
    assert main(["replay", "nope"]) == 1
    assert "no scoring run 'nope'" in capsys.readouterr().err
    runs = find_runs(scored_world.lake, CHURN, _first_run(scored_world)["dagster_run_id"])
    assert runs.height >= 1 and isinstance(runs, pl.DataFrame)
