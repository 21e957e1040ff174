"""`scorehouse replay` recomputes a scoring run exactly, even after the world moved on."""

from __future__ import annotations

import polars as pl
import pytest

from feature_repo.config import feature_store
from lakehouse.cli import main
from lakehouse.features import FEATURE_TABLES, build_features
from lakehouse.maintenance import optimize
from models.registry import CHAMPION
from models.replay import find_runs, replay_run
from tests.scored_world import ScoredWorld, train_and_register


def _replay(world: ScoredWorld, record: dict):
    return replay_run(
        world.lake, lambda pins: feature_store(world.lake.uri, pins=pins), world.registry, record
    )


def _first_run(world: ScoredWorld) -> dict:
    runs = world.lake.read("ml.scoring_runs").sort("finished_at")
    return runs.row(0, named=True)


def test_replay_matches_after_appends_compaction_and_a_new_champion(
    scored_world: ScoredWorld, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    world = scored_world
    record = _first_run(world)
    assert _replay(world, record).matches

    # Later data: the features of the scored day are rebuilt (new versions), then compacted.
    day = record["as_of_date"]
    rebuilt = build_features(world.lake, [day]).tables
    for name, frame in rebuilt.items():
        world.lake.replace(name, frame, partition={"feature_date": [day]})
        optimize(world.lake, name)
    # A new champion.
    newer = train_and_register(world.lake, world.registry, seed=7)
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
        other = [train_and_register(world.lake, world.registry, seed=3)]
    tampered = {**record, "model_version": other[0]}
    report = _replay(world, tampered)
    assert not report.matches
    assert any("ml.predictions.score" in line for line in report.differences)
    assert any("ml.predictions.model_version" in line for line in report.differences)


def test_unknown_run_is_a_clear_error(scored_world: ScoredWorld) -> None:
    with pytest.raises(ValueError, match="no scoring run 'nope'"):
        find_runs(scored_world.lake, "nope")
    runs = find_runs(scored_world.lake, _first_run(scored_world)["dagster_run_id"])
    assert runs.height >= 1 and isinstance(runs, pl.DataFrame)
