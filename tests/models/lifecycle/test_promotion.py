"""Champion/challenger: same out-of-time rows, margin and calibration bounds, floors, rollback."""

from __future__ import annotations

import polars as pl
import pytest

from lakehouse.storage import Lakehouse
from models.lifecycle import promotion
from models.lifecycle.policy import PromotionPolicy
from models.lifecycle.promotion import Comparison, Decision, decide
from models.lifecycle.registry import CHAMPION, ModelRegistry, RegistryError, RunContext
from models.training.train import TrainedModel
from tests.models.synthetic import CHURN

POLICY = PromotionPolicy(roc_auc_margin=0.01)


def compare(registry: ModelRegistry, lake: Lakehouse) -> Comparison:
    return promotion.compare(registry, lake, CHURN)


def promote_challenger(
    registry: ModelRegistry, lake: Lakehouse, policy: PromotionPolicy, **kwargs: object
) -> Decision:
    return promotion.promote_challenger(registry, lake, CHURN, policy, **kwargs)  # type: ignore[arg-type]


def rollback(
    registry: ModelRegistry, lake: Lakehouse, version: object, **kwargs: object
) -> Decision:
    return promotion.rollback(registry, lake, CHURN, version, **kwargs)  # type: ignore[arg-type]


def _register(registry: ModelRegistry, model: TrainedModel) -> str:
    context = RunContext(0, "churn_v1", {}, "run", use_case="churn")
    return registry.log_training_run(model, CHURN.encoding, context).version


def _champion(registry: ModelRegistry) -> str | None:
    version = registry.alias(CHAMPION)
    return None if version is None else str(version.version)


def _decisions(lake: Lakehouse) -> pl.DataFrame:
    return lake.read(CHURN.tables.decisions).sort("decided_at")


def test_decide_rules() -> None:
    good = {"roc_auc": 0.80, "ece": 0.01}
    assert decide(good, None, POLICY, 10)[0] == "promote"
    assert "floor" in decide({"roc_auc": 0.65, "ece": 0.01}, None, POLICY, 10)[1]
    assert "ceiling" in decide({"roc_auc": 0.9, "ece": 0.2}, None, POLICY, 10)[1]
    assert decide(good, {"roc_auc": 0.785}, POLICY, 10)[0] == "promote"
    verdict, reason = decide(good, {"roc_auc": 0.795}, POLICY, 10)
    assert verdict == "reject" and "margin" in reason and "same 10 out-of-time rows" in reason
    assert decide({"roc_auc": 0.9, "ece": 0.08}, {"roc_auc": 0.7}, POLICY, 10)[0] == "reject"


def test_first_model_below_the_floor_is_rejected(
    registry: ModelRegistry, lake: Lakehouse, weak_model: TrainedModel
) -> None:
    _register(registry, weak_model)
    decision = promote_challenger(registry, lake, POLICY, dagster_run_id="r1")
    assert decision.decision == "reject" and "first model" in decision.reason
    assert _champion(registry) is None
    [row] = _decisions(lake).to_dicts()
    assert row["decision"] == "reject" and row["dagster_run_id"] == "r1"
    assert registry.version("1").tags["decision"] == "reject"


def test_better_challenger_is_promoted_and_worse_one_rejected(
    registry: ModelRegistry, lake: Lakehouse, good_model: TrainedModel, weak_model: TrainedModel
) -> None:
    good = _register(registry, good_model)
    assert promote_challenger(registry, lake, POLICY).decision == "promote"
    assert _champion(registry) == good

    weak = _register(registry, weak_model)
    comparison = compare(registry, lake)
    assert comparison.champion is not None and comparison.champion.version == good
    assert comparison.rows.height == good_model.rows["test"]  # the same out-of-time rows
    decision = promote_challenger(registry, lake, POLICY, comparison=comparison)
    assert decision.decision == "reject"
    assert decision.champion_roc_auc == pytest.approx(good_model.metrics["test"]["roc_auc"])
    assert _champion(registry) == good  # unchanged

    same = _register(registry, good_model)  # the same model gains nothing over the champion
    assert promote_challenger(registry, lake, POLICY).decision == "reject"
    assert _champion(registry) == good
    moves = _decisions(lake)
    assert moves["challenger_version"].to_list() == [good, weak, same]
    assert moves["to_state"].to_list() == ["champion", "rejected", "rejected"]
    assert moves["from_state"].to_list() == ["candidate"] * 3
    assert registry.version(weak).tags["lifecycle_state"] == "rejected"
    assert registry.alias("candidate") is None  # a decided candidate leaves the alias


def test_challenger_beating_a_weak_champion_is_promoted(
    registry: ModelRegistry, lake: Lakehouse, good_model: TrainedModel, weak_model: TrainedModel
) -> None:
    weak = _register(registry, weak_model)
    rollback(registry, lake, weak, reason="seed a weak champion")
    good = _register(registry, good_model)
    decision = promote_challenger(registry, lake, POLICY)
    assert decision.decision == "promote" and decision.champion_version == weak
    assert _champion(registry) == good
    assert "beats the champion" in registry.version(good).tags["decision_reason"]


def test_rollback_repoints_the_champion_and_is_recorded(
    registry: ModelRegistry, lake: Lakehouse, good_model: TrainedModel
) -> None:
    first = _register(registry, good_model)
    promote_challenger(registry, lake, POLICY)
    second = _register(registry, good_model)
    rollback(registry, lake, second)
    assert _champion(registry) == second
    decision = rollback(registry, lake, first, reason="incident 42")
    assert _champion(registry) == first
    assert decision.champion_version == second
    moves = _decisions(lake)
    last = moves.filter(pl.col("decision") == "rollback").row(-1, named=True)
    assert last["decision"] == "rollback" and "incident 42" in last["reason"]
    assert last["from_state"] == "retired" and last["to_state"] == "champion"
    retired = moves.filter(pl.col("decision") == "retire").row(-1, named=True)
    assert retired["challenger_version"] == second and retired["to_state"] == "retired"
    assert registry.version(second).tags["lifecycle_state"] == "retired"
    with pytest.raises(RegistryError, match="no version 99"):
        rollback(registry, lake, 99)
