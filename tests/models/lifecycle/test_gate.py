"""The promotion gate's passes: a first model, two gates racing, a candidate waiting."""

from __future__ import annotations

import threading

import polars as pl

from lakehouse.storage import Lakehouse
from models.lifecycle.gate import read_state, run_gate
from models.lifecycle.policy import PromotionPolicy
from models.lifecycle.registry import CHAMPION, ModelRegistry, RunContext
from models.training.train import TrainedModel
from tests.models.synthetic import CHURN

POLICY = PromotionPolicy(roc_auc_margin=0.01)


def _register(registry: ModelRegistry, model: TrainedModel) -> str:
    context = RunContext(0, "churn_v1", {}, "run", use_case="churn")
    return registry.log_training_run(model, CHURN.encoding, context).version


def test_two_gates_racing_one_promotes_the_other_records_a_no_op(
    registry: ModelRegistry, lake: Lakehouse, good_model: TrainedModel
) -> None:
    """Both read the same state (no champion, one candidate) and race for the lock: the first
    promotes, the second finds the aliases moved and records a no-op, moving nothing."""
    version = _register(registry, good_model)
    barrier, outcomes, errors = threading.Barrier(2), [], []

    def gate() -> None:
        try:
            mine = ModelRegistry(CHURN.model_name)
            seen = read_state(mine)
            barrier.wait()
            outcomes.append(run_gate(mine, lake, CHURN, POLICY, seen=seen))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=gate) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    decisions = sorted(d.decision for o in outcomes for d in o.decisions)
    assert decisions == ["no-op", "promote"]
    assert str(registry.alias(CHAMPION).version) == version
    recorded = lake.read(CHURN.tables.decisions).sort("decided_at")
    assert recorded["decision"].to_list() == ["promote", "no-op"]
    no_op = recorded.row(1, named=True)
    assert no_op["to_state"] is None and "another gate moved the aliases first" in no_op["reason"]


def test_a_second_candidate_waits_for_the_shadow_slot(
    registry: ModelRegistry, lake: Lakehouse, good_model: TrainedModel
) -> None:
    """First model promoted; the next candidate enters shadow; a third waits (held, not
    recorded); the shadow model held while its evidence is missing."""
    first = _register(registry, good_model)
    run_gate(registry, lake, CHURN, POLICY)
    assert str(registry.alias(CHAMPION).version) == first
    admit = PromotionPolicy(evidence="shadow", admission_tolerance=1.0)
    second = _register(registry, good_model)
    entered = run_gate(registry, lake, CHURN, admit)
    assert [(d.challenger_version, d.decision, d.to_state) for d in entered.decisions] == [
        (second, "shadow", "shadow")
    ]
    third = _register(registry, good_model)
    held = run_gate(registry, lake, CHURN, admit)
    assert held.decisions == []
    assert any(f"v{second} held in shadow" in h for h in held.held)
    assert any(f"candidate v{third} waits" in h for h in held.held)
    states = lake.read(CHURN.tables.decisions).filter(pl.col("challenger_version") == third)
    assert states.is_empty()
    assert registry.version(third).tags["lifecycle_state"] == "candidate"


def test_a_rejected_drift_candidate_settles_drift_until_a_new_champion(
    registry: ModelRegistry, lake: Lakehouse, good_model: TrainedModel
) -> None:
    from datetime import date

    from models.lifecycle.promotion import Decision, apply_moves, retirement, rollback
    from orchestration.monitoring.sensor import settled_triggers

    first = _register(registry, good_model)
    run_gate(registry, lake, CHURN, POLICY, today=date(2025, 5, 1))
    drift = _register(registry, good_model)
    registry.tag_version(drift, {"trigger": "drift"})
    assert settled_triggers(registry) == {}
    rejected = Decision(
        "reject", "no gain", drift, first, from_state="candidate", to_state="rejected",
        as_of=date(2025, 6, 1),
    )  # fmt: skip
    apply_moves(registry, lake, CHURN, [rejected], run_id=None)
    assert settled_triggers(registry) == {"drift": drift}
    newer = _register(registry, good_model)
    promoted = Decision(
        "promote", "better", newer, first, from_state="candidate", to_state="champion",
        as_of=date(2025, 7, 1),
    )  # fmt: skip
    apply_moves(registry, lake, CHURN, [promoted, retirement(first, newer, None)], run_id=None)
    assert settled_triggers(registry) == {}  # judged against the old champion: re-armed
    rollback(registry, lake, CHURN, first)
    assert str(registry.alias(CHAMPION).version) == first
