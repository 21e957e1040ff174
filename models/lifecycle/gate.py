"""The promotion gate: candidates into shadow, shadow models to champion or rejected.

One pass (``run_gate``), under the model's gate lock:

1. No champion yet: the newest candidate is decided on its out-of-time rows (first model).
2. A model in shadow: judged against the champion on paired matured outcomes
   (``models.lifecycle.evidence``) once it has been in shadow ``min_shadow_days`` days of the
   data clock with ``min_shadow_rows`` matured rows — promoted (the alias swap is one move
   between two scoring runs: each run resolves its models once, at its start), rejected, or held
   while the evidence matures; after ``max_shadow_days`` without enough evidence the policy's
   ``evidence`` says whether it is rejected or decided on out-of-time rows.
3. The shadow slot free: the newest candidate is admitted into shadow if its out-of-time rows
   do not disqualify it (older candidates are retired as superseded). With ``evidence:
   out_of_time`` it is decided on those rows instead.

Holds are reported, not recorded; every move is recorded with its evidence. The data clock is
the newest scored day (``data_today``; before any scoring, the day the newest candidate was
trained for). Two gates racing: each reads the state it acts on
before taking the lock; the one that gets the lock second finds the state changed and records a
``no-op`` naming what it found instead.
"""

from __future__ import annotations

import fcntl
import math
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from lakehouse.config import scorehouse_home
from lakehouse.storage import Lakehouse
from models.lifecycle.evidence import PairedEvidence, paired_evidence
from models.lifecycle.policy import PromotionPolicy
from models.lifecycle.promotion import (
    Comparison,
    Decision,
    apply_moves,
    compare,
    comparison_evidence,
    promote_challenger,
    retirement,
)
from models.lifecycle.registry import (
    CANDIDATE,
    CHAMPION,
    ORPHAN_TAG,
    SHADOW,
    STATE_TAG,
    ModelRegistry,
)
from models.lifecycle.shadow import matured_shadow_rows
from models.lifecycle.states import REJECTED, RETIRED, state_of
from models.usecase.spec import UseCase

Lock = Callable[[], AbstractContextManager[None]]


@dataclass(frozen=True)
class GateState:
    """What a gate acts on: the live aliases and the versions waiting as candidates."""

    champion: str | None
    shadow: str | None
    candidates: tuple[str, ...]
    """Versions in state ``candidate``, newest first."""


@dataclass
class GateOutcome:
    """The moves a gate pass recorded, what it held and why, and the shadow evidence."""

    decisions: list[Decision] = field(default_factory=list)
    held: list[str] = field(default_factory=list)
    evidence: PairedEvidence | None = None
    today: date | None = None


def read_state(registry: ModelRegistry) -> GateState:
    """The aliases (one read) and the candidates (tags) as they are now."""
    aliases = registry.alias_versions()
    by_version: dict[str, list[str]] = {}
    for alias, version in aliases.items():
        by_version.setdefault(version, []).append(alias)
    live = {aliases.get(CHAMPION), aliases.get(SHADOW)}
    candidates = tuple(
        str(v.version)
        for v in registry.versions()
        if state_of(v.tags, by_version.get(str(v.version))) == CANDIDATE
        and not v.tags.get(ORPHAN_TAG)
        and str(v.version) not in live
    )
    return GateState(aliases.get(CHAMPION), aliases.get(SHADOW), candidates)


def file_lock(model_name: str, tracking_uri: str = "") -> Lock:
    """An exclusive lock file beside an embedded MLflow store (one gate per model and host).
    The same file as ``orchestration.locks.promotion_gate`` takes for that store, so a gate
    run here and one run by a job serialize; a shared registry needs that module's lock."""

    @contextmanager
    def hold() -> Iterator[None]:
        folder = Path(scorehouse_home()) / "mlflow"
        if tracking_uri.startswith("sqlite:///"):
            folder = Path(tracking_uri.removeprefix("sqlite:///")).parent
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / f".scorehouse.promotion.{model_name}.lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    return hold


def data_today(lake: Lakehouse, use_case: UseCase) -> date | None:
    """The data clock: the newest day scored by the champion (None before any scoring)."""
    table = use_case.tables.scoring.scoring_runs
    if not lake.exists(table):
        return None
    newest = lake.scan(table).select(pl.col("as_of_date").max()).collect().item()
    return newest if isinstance(newest, date) else None


def _trained_for(registry: ModelRegistry, state: GateState) -> date | None:
    """Before any scoring, the clock is the day the newest candidate was trained for."""
    if not state.candidates:
        return None
    tag = registry.version(state.candidates[0]).tags.get("trigger_as_of")
    return date.fromisoformat(tag) if tag else None


def run_gate(
    registry: ModelRegistry,
    lake: Lakehouse,
    use_case: UseCase,
    policy: PromotionPolicy,
    *,
    today: date | None = None,
    dagster_run_id: str | None = None,
    lock: Lock | None = None,
    seen: GateState | None = None,
) -> GateOutcome:
    """One pass of the gate (see the module docstring). ``seen``: the state this gate decided
    to act on (read now when not given); ``lock``: the model's gate lock (default: the file
    lock of an embedded store)."""
    seen = seen or read_state(registry)
    with (lock or file_lock(registry.model_name, registry.uri))():
        now = read_state(registry)
        today = today or data_today(lake, use_case) or _trained_for(registry, now)
        outcome = GateOutcome(today=today)
        if now.champion != seen.champion or now.shadow != seen.shadow:
            outcome.decisions.append(_no_op(seen, now, today))
            apply_moves(registry, lake, use_case, outcome.decisions, run_id=dagster_run_id)
            return outcome
        if now.champion is None:
            if now.candidates:
                comparison = compare(registry, lake, use_case, now.candidates[0])
                _decide_out_of_time(
                    registry, lake, use_case, policy, comparison, outcome, dagster_run_id
                )
            else:
                outcome.held.append("no champion and no candidate: train a model first")
            return outcome
        shadow_free = now.shadow is None
        if now.shadow is not None:
            shadow_free = _judge_shadow(
                registry, lake, use_case, policy, now, outcome, dagster_run_id
            )
        if now.candidates:
            if shadow_free:
                _admit(registry, lake, use_case, policy, now, outcome, dagster_run_id)
            else:
                outcome.held.append(
                    f"candidate v{now.candidates[0]} waits: v{now.shadow} holds the shadow slot"
                )
        return outcome


def _decide_out_of_time(
    registry: ModelRegistry,
    lake: Lakehouse,
    use_case: UseCase,
    policy: PromotionPolicy,
    comparison: Comparison,
    outcome: GateOutcome,
    run_id: str | None,
) -> None:
    """Promote or reject on out-of-time rows; the moves (a retirement too) into ``outcome``."""
    decision = promote_challenger(
        registry,
        lake,
        use_case,
        policy,
        comparison=comparison,
        dagster_run_id=run_id,
        as_of=outcome.today,
    )
    outcome.decisions.append(decision)
    if decision.decision == "promote" and decision.champion_version is not None:
        outcome.decisions.append(
            retirement(decision.champion_version, decision.challenger_version, outcome.today)
        )


def _no_op(seen: GateState, now: GateState, today: date | None) -> Decision:
    version = seen.shadow or (seen.candidates[0] if seen.candidates else seen.champion) or "?"
    return Decision(
        "no-op",
        f"another gate moved the aliases first (champion v{seen.champion} → v{now.champion}, "
        f"shadow v{seen.shadow} → v{now.shadow}); nothing done on the state this gate read",
        version,
        now.champion,
        as_of=today,
        evidence={"seen": seen.__dict__, "found": now.__dict__},
    )


def _days_in_shadow(registry: ModelRegistry, version: str, today: date | None) -> int:
    since = registry.version(version).tags.get(f"{SHADOW}_since")
    if since is None or today is None:
        return 0
    return (today - date.fromisoformat(since)).days


def shadow_evidence(
    registry: ModelRegistry,
    lake: Lakehouse,
    use_case: UseCase,
    policy: PromotionPolicy,
    champion: str,
    shadow: str,
    today: date | None = None,
) -> PairedEvidence:
    """The shadow model against the champion on their paired rows matured by ``today``."""
    tags = registry.version(shadow).tags
    since = tags.get(f"{SHADOW}_since")
    rows = matured_shadow_rows(
        lake,
        use_case,
        champion,
        shadow,
        value_feature=policy.business.value_feature,
        since=date.fromisoformat(since) if since else None,
        until=today,
    )
    return paired_evidence(
        rows,
        use_case.label.definition.column,
        use_case.entity.join_key,
        business=policy.business,
        threshold=use_case.scoring.decision_threshold,
        samples=policy.bootstrap_samples,
        confidence=policy.confidence,
    )


def verdict(evidence: PairedEvidence, policy: PromotionPolicy) -> tuple[bool, list[str]]:
    """(promote?, the criteria each with its outcome) on enough evidence."""
    auc, pr, value = (evidence.difference[k] for k in ("roc_auc", "pr_auc", "business_value"))
    level = f"{evidence.confidence:.0%}"
    checks = [
        (
            auc.estimate >= policy.roc_auc_margin,
            f"ROC-AUC gain {auc.estimate:+.4f} ≥ margin {policy.roc_auc_margin}",
        ),
        (
            not policy.require_significant_gain or auc.low > 0,
            f"ROC-AUC gain {level} interval [{auc.low:+.4f}, {auc.high:+.4f}] above 0",
        ),
        (
            pr.high >= 0,
            f"PR-AUC gain {pr.estimate:+.4f} [{pr.low:+.4f}, {pr.high:+.4f}] not below 0",
        ),
        (
            value.high >= 0,
            f"{policy.business.name} gain {value.estimate:+,.0f} "
            f"[{value.low:+,.0f}, {value.high:+,.0f}] not below 0",
        ),
        (
            evidence.shadow["ece"] <= policy.max_calibration_error,
            f"ECE {evidence.shadow['ece']:.4f} ≤ {policy.max_calibration_error}",
        ),
        (
            evidence.stability_psi <= policy.max_score_psi,
            f"day-to-day score PSI {evidence.stability_psi:.3f} ≤ {policy.max_score_psi}",
        ),
    ]
    return all(ok for ok, _ in checks), [f"{'✓' if ok else '✗'} {text}" for ok, text in checks]


def _judge_shadow(
    registry: ModelRegistry,
    lake: Lakehouse,
    use_case: UseCase,
    policy: PromotionPolicy,
    state: GateState,
    outcome: GateOutcome,
    run_id: str | None,
) -> bool:
    """Decide or hold the shadow model; True when the shadow slot is free afterwards."""
    assert state.champion is not None and state.shadow is not None
    champion, shadow = state.champion, state.shadow
    days = _days_in_shadow(registry, shadow, outcome.today)
    evidence = shadow_evidence(registry, lake, use_case, policy, champion, shadow, outcome.today)
    outcome.evidence = evidence
    enough = (
        days >= policy.min_shadow_days
        and evidence.rows >= policy.min_shadow_rows
        and not math.isnan(evidence.difference["roc_auc"].estimate)
    )
    summary = (
        f"{days} days in shadow, {evidence.rows} matured paired rows over {evidence.days} days "
        f"(policy: {policy.min_shadow_days} days, {policy.min_shadow_rows} rows)"
    )
    facts: dict[str, Any] = {
        "kind": "matured shadow-scoring",
        "days_in_shadow": days,
        **evidence.to_json(),
        "policy": {
            "min_shadow_days": policy.min_shadow_days,
            "min_shadow_rows": policy.min_shadow_rows,
            "roc_auc_margin": policy.roc_auc_margin,
            "require_significant_gain": policy.require_significant_gain,
            "max_calibration_error": policy.max_calibration_error,
            "max_score_psi": policy.max_score_psi,
        },
    }
    trigger = registry.version(shadow).tags.get("trigger")
    if not enough:
        if days < policy.max_shadow_days:
            outcome.held.append(f"v{shadow} held in shadow: {summary}")
            return False
        if policy.evidence == "shadow_or_out_of_time":
            comparison = compare(registry, lake, use_case, shadow)
            fallback = (
                f"no matured shadow evidence within {policy.max_shadow_days} days ({summary}): "
                "decided on out-of-time rows, as the policy allows"
            )
            note = f"{fallback}; {comparison.note}" if comparison.note else fallback
            _decide_out_of_time(
                registry, lake, use_case, policy, replace(comparison, note=note), outcome, run_id
            )
            return True
        reason = f"evidence did not mature within {policy.max_shadow_days} days: {summary}"
        decision = _shadow_decision("reject", reason, shadow, champion, evidence, outcome, facts)
        outcome.decisions.append(decision)
        apply_moves(registry, lake, use_case, [decision], run_id=run_id)
        return True
    promote, criteria = verdict(evidence, policy)
    facts["criteria"] = criteria
    reason = f"{'promoted' if promote else 'rejected'} on {summary}: " + "; ".join(criteria)
    decision = _shadow_decision(
        "promote" if promote else "reject", reason, shadow, champion, evidence, outcome, facts
    )
    decision = Decision(**{**decision.__dict__, "trigger": trigger})
    moves = [decision]
    if promote:
        moves.append(retirement(champion, shadow, outcome.today))
    outcome.decisions += moves
    apply_moves(registry, lake, use_case, moves, run_id=run_id)
    return True


def _shadow_decision(
    verdict_name: str,
    reason: str,
    shadow: str,
    champion: str,
    evidence: PairedEvidence,
    outcome: GateOutcome,
    facts: dict[str, Any],
) -> Decision:
    return Decision(
        verdict_name,
        reason,
        shadow,
        champion,
        evidence.shadow.get("roc_auc"),
        evidence.champion.get("roc_auc"),
        evidence.shadow.get("ece"),
        from_state=SHADOW,
        to_state=CHAMPION if verdict_name == "promote" else REJECTED,
        as_of=outcome.today,
        evidence=facts,
    )


def _admit(
    registry: ModelRegistry,
    lake: Lakehouse,
    use_case: UseCase,
    policy: PromotionPolicy,
    state: GateState,
    outcome: GateOutcome,
    run_id: str | None,
) -> None:
    """The newest candidate into shadow (or decided at once on out-of-time rows)."""
    newest, *older = state.candidates
    moves = [
        Decision(
            "retire",
            f"superseded by candidate v{newest} before the gate reached it",
            version,
            state.champion,
            from_state=CANDIDATE,
            to_state=RETIRED,
            as_of=outcome.today,
        )
        for version in older
    ]
    comparison = compare(registry, lake, use_case, newest)
    if policy.evidence == "out_of_time":
        if moves:
            apply_moves(registry, lake, use_case, moves, run_id=run_id)
        outcome.decisions += moves
        _decide_out_of_time(registry, lake, use_case, policy, comparison, outcome, run_id)
        return
    ours, theirs = comparison.challenger.metrics, comparison.champion
    floor = (theirs.metrics["roc_auc"] if theirs else 0.0) - policy.admission_tolerance
    problems = []
    if ours["ece"] > policy.max_calibration_error:
        problems.append(f"ECE {ours['ece']:.4f} > {policy.max_calibration_error}")
    if ours["roc_auc"] < floor:
        problems.append(
            f"ROC-AUC {ours['roc_auc']:.4f} < champion's {floor + policy.admission_tolerance:.4f}"
            f" − tolerance {policy.admission_tolerance}"
        )
    rows = comparison.rows.height
    champion_auc = theirs.metrics["roc_auc"] if theirs else math.nan
    reason = (
        f"on its {rows} out-of-time rows: ROC-AUC {ours['roc_auc']:.4f} vs champion "
        f"{champion_auc:.4f}, ECE {ours['ece']:.4f}"
    )
    admitted = not problems
    tags = registry.version(newest).tags
    moves.append(
        Decision(
            "shadow" if admitted else "reject",
            (
                f"admitted into shadow {reason}"
                if admitted
                else f"not admitted: {'; '.join(problems)} ({reason})"
            ),
            newest,
            state.champion,
            ours["roc_auc"],
            theirs.metrics["roc_auc"] if theirs else None,
            ours["ece"],
            from_state=tags.get(STATE_TAG, CANDIDATE),
            to_state=SHADOW if admitted else REJECTED,
            as_of=outcome.today,
            trigger=tags.get("trigger"),
            evidence=comparison_evidence(comparison),
        )
    )
    outcome.decisions += moves
    apply_moves(registry, lake, use_case, moves, run_id=run_id)
