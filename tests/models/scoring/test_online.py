"""The online store serves the latest *recorded* score of each entity, and the check finds and
repairs anything else (a stray write, a run whose record was never committed)."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from feature_repo.config import feature_store
from models.scoring.online import compare_online, served_rows
from models.scoring.runs import current_predictions
from orchestration.cli import main
from tests.scored_world import ScoredWorld
from tests.world import churn

TABLES = churn().tables.scoring


@pytest.fixture(autouse=True)
def cli_lake(scored_world: ScoredWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCOREHOUSE_LAKEHOUSE_URI", str(scored_world.lake.uri))


def _online(world: ScoredWorld, ids: list[str]) -> dict[str, list]:
    return (
        feature_store(world.lake.uri)
        .get_online_features(
            features=["churn_prediction:score", "churn_prediction:scoring_run_id"],
            entity_rows=[{"customer_id": i} for i in ids],
        )
        .to_dict()
    )


def test_the_scored_world_serves_exactly_the_recorded_scores(scored_world: ScoredWorld) -> None:
    store = feature_store(scored_world.lake.uri)
    diff = compare_online(store, scored_world.lake, TABLES)
    assert diff.checked > 0 and diff.entities == [], diff.differing
    truth = served_rows(scored_world.lake, TABLES)
    latest_day = current_predictions(scored_world.lake, TABLES).collect()["as_of_date"].max()
    assert truth.height == diff.checked  # every scored customer has a recorded score
    assert latest_day == scored_world.days[-1]


def test_a_stray_write_is_found_and_repaired(
    scored_world: ScoredWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    world = scored_world
    store = feature_store(world.lake.uri)
    victim = served_rows(world.lake, TABLES).row(0, named=True)
    forged = pl.DataFrame([{**victim, "score": 0.999, "scoring_run_id": "forged"}])
    store.write_to_online_store("churn_prediction", forged.to_pandas())
    assert _online(world, [victim["customer_id"]])["score"] == [0.999]

    assert main(["online", "check", "--use-case", "churn"]) == 1
    out = capsys.readouterr().out
    assert "1 differ" in out and victim["customer_id"] in out, out
    assert main(["online", "check", "--use-case", "churn", "--repair"]) == 0
    assert "0 still differ" in capsys.readouterr().out
    assert _online(world, [victim["customer_id"]])["score"] == [victim["score"]]


def test_an_unrecorded_run_is_never_served(scored_world: ScoredWorld) -> None:
    """A run that died after its predictions commit (no scoring-runs row): the refresh serves the
    recorded run, and values already online from it are found and blanked or restored."""
    world = scored_world
    day = world.days[-1]
    recorded = world.lake.read(TABLES.predictions, where=pl.col("as_of_date") == day)
    orphan = recorded.head(3).with_columns(
        pl.lit("orphan-run").alias("scoring_run_id"),
        (pl.col("prediction_id") + "-orphan").alias("prediction_id"),
        pl.lit(0.5).alias("score"),
        pl.lit(datetime.now(UTC)).alias("scored_at"),
    )
    stranger = orphan.head(1).with_columns(pl.lit("C_NOT_SCORED").alias("customer_id"))
    world.lake.append(TABLES.predictions, pl.concat([orphan, stranger]))
    assert world.score(day).success  # re-score: the refresh writes the recorded runs only
    ids = [*orphan["customer_id"].to_list(), "C_NOT_SCORED"]
    online = _online(world, ids)
    assert "orphan-run" not in online["scoring_run_id"] and online["score"][-1] is None
    # Values of the orphan run written straight into the store are found, then repaired.
    store = feature_store(world.lake.uri)
    store.write_to_online_store(
        "churn_prediction",
        pl.concat([orphan, stranger])
        .select(
            "customer_id",
            "event_timestamp",
            "scored_at",
            "score",
            "risk_band",
            "decision",
            "reason_codes",
            "reason_features",
            "reason_contributions",
            "model_version",
            "scoring_run_id",
        )
        .to_pandas(),
    )
    diff = compare_online(store, world.lake, TABLES)
    assert sorted(diff.entities) == sorted(ids)
    assert main(["online", "check", "--use-case", "churn", "--repair"]) == 0
    assert _online(world, ["C_NOT_SCORED"])["score"] == [None]
