"""Scoring refuses bad inputs before writing anything; previous versions stay intact."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb

from feature_repo.config import feature_store
from lakehouse.errors import VersionNotAvailableError
from models.lifecycle.registry import ModelRegistry
from models.scoring.batch import (
    ScoringError,
    ScoringModel,
    ScoringRun,
    load_model,
    pin_feature_versions,
    score_day,
)
from models.scoring.policy import ScoringPolicy
from tests.scored_world import ScoredWorld
from tests.world import churn

CHURN = churn()
SCORING = CHURN.tables.scoring
TABLES = (SCORING.predictions, SCORING.explanations, SCORING.scoring_runs)
FEATURE_TABLES = CHURN.tables.feature_tables


def _versions(world: ScoredWorld) -> dict[str, int | None]:
    return {name: world.lake.version(name) for name in TABLES}


def _run(world: ScoredWorld, versions: dict[str, int]) -> ScoringRun:
    return ScoringRun("test-run:x", world.days[0], "test-run", "test", versions, datetime.now(UTC))


def test_no_champion_fails_before_writing(
    scored_world: ScoredWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(ScoringError, match="no model version has the alias 'champion'"):
        load_model(ModelRegistry(CHURN.model_name))
    before = _versions(scored_world)
    result = scored_world.score(scored_world.days[0], raise_on_error=False)
    assert not result.success
    assert _versions(scored_world) == before


def test_model_features_must_match_the_feature_service(scored_world: ScoredWorld) -> None:
    world = scored_world
    names = CHURN.encoding.names[:-1]  # a model that never saw the last feature
    rng = np.random.default_rng(0)
    data = xgb.DMatrix(
        rng.normal(size=(50, len(names))), label=rng.integers(0, 2, 50), feature_names=names
    )
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 2}, data, 3)
    model = ScoringModel("churn", "99", "champion", booster, "churn_v1", 0)
    versions = pin_feature_versions(world.lake, FEATURE_TABLES)
    before = _versions(world)
    with pytest.raises(ScoringError, match=r"missing \['tickets_per_seat_30d'\]"):
        score_day(
            world.lake,
            feature_store(world.lake.uri, pins=versions),
            CHURN,
            model,
            _run(world, versions),
            ScoringPolicy(),
        )
    assert _versions(world) == before


def test_a_feature_version_that_no_longer_exists(scored_world: ScoredWorld) -> None:
    world = scored_world
    model = load_model(world.registry, version=world.champion)
    versions = {
        **pin_feature_versions(world.lake, FEATURE_TABLES),
        "features.customer_account": 9999,
    }
    before = _versions(world)
    with pytest.raises(VersionNotAvailableError, match=r"features\.customer_account: version 9999"):
        score_day(
            world.lake,
            feature_store(world.lake.uri),
            CHURN,
            model,
            _run(world, versions),
            ScoringPolicy(),
        )
    assert _versions(world) == before


def test_missing_features_are_scored_and_flagged(scored_world: ScoredWorld) -> None:
    world = scored_world
    rows = world.lake.read(SCORING.predictions)
    flagged = rows.filter(rows["missing_feature_count"] > 0)
    assert flagged.height > 0  # e.g. customers who never answered a CSAT survey
    assert flagged["score"].is_finite().all()
    explanations = world.lake.read(SCORING.explanations)
    shap_last_csat = explanations["shap__last_csat_90d"]
    assert shap_last_csat.is_finite().all()
