"""Lifecycle moves of model versions, recorded with their evidence; decisions on out-of-time rows.

Every move (``models.lifecycle.states``) is applied the same way (``apply_moves``): the aliases
first (a version's live state is its alias: ``candidate``, ``shadow``, ``champion``), then its
``lifecycle_state`` and decision tags, then one append of the moves' rows to the use case's
model-decisions table. If recording fails, the aliases are put back as they were.

On out-of-time rows (``compare``): a candidate is judged on its own test rows (the training-set
version and split dates it was trained with, read back from its tags) and the champion is
scored on exactly those rows. ``promote_challenger`` decides on them directly — a use case's
first model (floors ``first_model_min_roc_auc``, ``first_model_max_calibration_error``), or a
policy whose ``evidence`` is ``out_of_time`` — and otherwise the gate uses them to admit a
candidate into shadow (``models.lifecycle.gate``). ``rollback`` re-points the champion.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import polars as pl
from mlflow.entities.model_registry import ModelVersion

from lakehouse.commit import CommitInfo
from lakehouse.storage import Lakehouse
from models.lifecycle.policy import PromotionPolicy
from models.lifecycle.registry import (
    CANDIDATE,
    CHAMPION,
    ORPHAN_TAG,
    STATE_TAG,
    ModelRegistry,
    RegistryError,
)
from models.lifecycle.states import ALIAS_OF, REJECTED, RETIRED, check_move, evidence_json
from models.lifecycle.tables import DECISION_COLUMNS
from models.metrics import binary_metrics
from models.training.params import TimeSplit, split_from_tags
from models.training.train import predict
from models.usecase.spec import UseCase

OUT_OF_TIME = "out-of-time"


@dataclass(frozen=True)
class Evaluated:
    """One model version scored on the comparison rows."""

    version: str
    metrics: dict[str, float]
    predictions: np.ndarray


@dataclass(frozen=True)
class Comparison:
    """A candidate and the champion (if any) on the candidate's out-of-time rows."""

    rows: pl.DataFrame
    challenger: Evaluated
    champion: Evaluated | None
    note: str = ""
    evidence: str = OUT_OF_TIME


@dataclass(frozen=True)
class Decision:
    """One lifecycle move of a version (or a recorded non-move), and why."""

    decision: str  # shadow | promote | reject | retire | rollback | unchanged | no-op
    reason: str
    challenger_version: str
    """The version the decision is about."""
    champion_version: str | None  # the champion before the decision
    challenger_roc_auc: float | None = None
    champion_roc_auc: float | None = None
    challenger_calibration_error: float | None = None
    from_state: str | None = None
    to_state: str | None = None
    as_of: date | None = None
    trigger: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def moves(self) -> bool:
        return self.to_state is not None and self.to_state != self.from_state


def decide(
    challenger: Mapping[str, float],
    champion: Mapping[str, float] | None,
    policy: PromotionPolicy,
    rows: int,
    evidence: str = OUT_OF_TIME,
) -> tuple[str, str]:
    """``("promote" | "reject", reason)`` from metrics measured on the same ``rows``."""
    auc, ece = challenger["roc_auc"], challenger["ece"]
    if champion is None:
        failed = []
        if auc < policy.first_model_min_roc_auc:
            failed.append(f"ROC-AUC {auc:.4f} < floor {policy.first_model_min_roc_auc}")
        if ece > policy.first_model_max_calibration_error:
            failed.append(f"ECE {ece:.4f} > ceiling {policy.first_model_max_calibration_error}")
        if failed:
            return "reject", f"first model on {rows} out-of-time rows: " + "; ".join(failed)
        return "promote", (
            f"first model on {rows} out-of-time rows: ROC-AUC {auc:.4f} ≥ "
            f"{policy.first_model_min_roc_auc}, ECE {ece:.4f} ≤ "
            f"{policy.first_model_max_calibration_error}"
        )
    gain = auc - champion["roc_auc"]
    versus = (
        f"ROC-AUC {auc:.4f} vs champion {champion['roc_auc']:.4f} on the same {rows} "
        f"{evidence} rows (gain {gain:+.4f}, margin {policy.roc_auc_margin})"
    )
    if ece > policy.max_calibration_error:
        return "reject", f"ECE {ece:.4f} > ceiling {policy.max_calibration_error}; {versus}"
    if gain < policy.roc_auc_margin:
        return "reject", f"does not beat the champion by the margin: {versus}"
    return "promote", f"beats the champion: {versus}; ECE {ece:.4f}"


def out_of_time_rows(lake: Lakehouse, use_case: UseCase, version: ModelVersion) -> pl.DataFrame:
    """The test rows a version was judged on (its training-set version and split)."""
    split = split_from_tags(version.tags)
    table_version = int(version.tags["training_set_version"])
    rows = lake.read(use_case.tables.training_set, version=table_version)
    return split.rows(rows, "test")


def evaluate(
    registry: ModelRegistry, use_case: UseCase, version: str, rows: pl.DataFrame
) -> Evaluated:
    """Score ``rows`` with a registered version and compute every metric."""
    probabilities = predict(registry.load_booster(version), use_case.encoding, rows)
    labels = rows[use_case.label.definition.column].to_numpy()
    return Evaluated(version, binary_metrics(labels, probabilities), probabilities)


def compare(
    registry: ModelRegistry,
    lake: Lakehouse,
    use_case: UseCase,
    version: str | None = None,
) -> Comparison:
    """``version`` (default: the ``candidate``) and the ``champion`` on that version's
    out-of-time rows."""
    found = registry.version(version) if version is not None else registry.alias(CANDIDATE)
    if found is None:
        raise RegistryError(f"model {registry.model_name} has no {CANDIDATE!r} version")
    champion = registry.alias(CHAMPION)
    rows = out_of_time_rows(lake, use_case, found)
    note = ""
    if champion is not None and champion.version != found.version:
        champion_split = split_from_tags(champion.tags)
        own_split = split_from_tags(found.tags)
        if (
            isinstance(champion_split, TimeSplit)
            and isinstance(own_split, TimeSplit)
            and champion_split.validation_end >= own_split.test_start
        ):
            note = (
                f"champion v{champion.version} was fitted or early-stopped on outcomes "
                "overlapping these rows; its score here is optimistic"
            )
    return Comparison(
        rows,
        evaluate(registry, use_case, str(found.version), rows),
        evaluate(registry, use_case, str(champion.version), rows) if champion is not None else None,
        note,
    )


def comparison_evidence(comparison: Comparison) -> dict[str, Any]:
    """The out-of-time comparison as evidence JSON."""
    return {
        "kind": comparison.evidence,
        "rows": comparison.rows.height,
        "candidate": comparison.challenger.metrics,
        "champion": comparison.champion.metrics if comparison.champion else None,
        "note": comparison.note,
    }


def promote_challenger(
    registry: ModelRegistry,
    lake: Lakehouse,
    use_case: UseCase,
    policy: PromotionPolicy,
    *,
    comparison: Comparison | None = None,
    dagster_run_id: str | None = None,
    as_of: date | None = None,
) -> Decision:
    """Decide the candidate on its out-of-time rows: ``candidate → champion`` (the champion
    before is retired) or ``candidate → rejected``; record why (see the module docstring)."""
    comparison = comparison or compare(registry, lake, use_case)
    challenger, champion = comparison.challenger, comparison.champion
    tags = registry.version(challenger.version).tags
    state = tags.get(STATE_TAG, CANDIDATE)
    if champion is not None and champion.version == challenger.version:
        verdict, reason = "unchanged", f"v{challenger.version} is already the champion"
    elif tags.get(ORPHAN_TAG):
        verdict = "reject"
        reason = f"v{challenger.version} is an orphan ({tags[ORPHAN_TAG]}); champion kept"
    else:
        verdict, reason = decide(
            challenger.metrics,
            champion.metrics if champion else None,
            policy,
            comparison.rows.height,
            comparison.evidence,
        )
        if comparison.note:
            reason = f"{reason} (note: {comparison.note})"
    target = {"promote": CHAMPION, "reject": REJECTED}.get(verdict)
    decision = Decision(
        verdict,
        reason,
        challenger.version,
        champion.version if champion else None,
        challenger.metrics.get("roc_auc"),
        champion.metrics.get("roc_auc") if champion else None,
        challenger.metrics.get("ece"),
        from_state=state,
        to_state=target,
        as_of=as_of,
        trigger=tags.get("trigger"),
        evidence=comparison_evidence(comparison),
    )
    moves = [decision]
    if verdict == "promote" and champion is not None:
        moves.append(retirement(champion.version, challenger.version, as_of))
    apply_moves(registry, lake, use_case, moves, run_id=dagster_run_id)
    return decision


def retirement(version: str, successor: str, as_of: date | None) -> Decision:
    """The move of a champion replaced by ``successor``."""
    return Decision(
        "retire",
        f"replaced as champion by v{successor}",
        version,
        version,
        from_state=CHAMPION,
        to_state=RETIRED,
        as_of=as_of,
    )


def rollback(
    registry: ModelRegistry,
    lake: Lakehouse,
    use_case: UseCase,
    version: str | int,
    *,
    reason: str = "",
    dagster_run_id: str | None = None,
) -> Decision:
    """Point ``champion`` at an existing ``version`` (recorded as a ``rollback`` decision; the
    champion before is retired)."""
    target = registry.version(version)
    current = registry.alias(CHAMPION)
    previous = str(current.version) if current else None
    tags = target.tags
    state = tags.get(STATE_TAG, RETIRED)
    if state == CHAMPION and previous != str(target.version):
        state = RETIRED  # tagged champion but no longer holding the alias: it left it
    decision = Decision(
        "rollback",
        f"champion re-pointed from {'v' + previous if previous else 'none'} to v{target.version}"
        + (f": {reason}" if reason else ""),
        str(target.version),
        previous,
        float(tags["test_roc_auc"]) if "test_roc_auc" in tags else None,
        None,
        float(tags["test_ece"]) if "test_ece" in tags else None,
        from_state=state,
        to_state=CHAMPION,
    )
    moves = [decision]
    if previous is not None and previous != str(target.version):
        moves.append(retirement(previous, str(target.version), None))
    apply_moves(registry, lake, use_case, moves, run_id=dagster_run_id, checked=False)
    return decision


def apply_moves(
    registry: ModelRegistry,
    lake: Lakehouse,
    use_case: UseCase,
    decisions: Sequence[Decision],
    *,
    run_id: str | None,
    checked: bool = True,
) -> None:
    """Move the aliases, tag the versions, record every decision in one commit; put the aliases
    back if anything after the first alias move fails (see the module docstring)."""
    if checked:
        for d in decisions:
            if d.moves:
                check_move(d.challenger_version, d.from_state or "", d.to_state or "")
    before = registry.alias_versions()
    decided_at = datetime.now(UTC)
    ids = [uuid.uuid4().hex for _ in decisions]
    try:
        for d in decisions:
            if d.moves:
                _move_aliases(registry, d)
        for d, decision_id in zip(decisions, ids, strict=True):
            tags = {
                "decision": d.decision,
                "decision_reason": d.reason[:5000],
                "decided_at": decided_at.isoformat(),
                "decision_id": decision_id,
            }
            if d.moves:
                tags[STATE_TAG] = d.to_state or ""
                if d.as_of is not None:
                    tags[f"{d.to_state}_since"] = d.as_of.isoformat()
            registry.tag_version(d.challenger_version, tags)
        frame = pl.concat(
            [
                decision_frame(d, i, decided_at, registry.model_name, run_id)
                for d, i in zip(decisions, ids, strict=True)
            ]
        )
        lake.append(
            use_case.tables.decisions,
            frame,
            commit=CommitInfo(run_id=run_id, asset_key=f"ml/{use_case.name}_promotion_gate"),
        )
    except Exception:
        _restore(registry, before)
        raise


def _move_aliases(registry: ModelRegistry, decision: Decision) -> None:
    version = decision.challenger_version
    leaving = ALIAS_OF.get(decision.from_state or "")
    entering = ALIAS_OF.get(decision.to_state or "")
    if entering is not None:
        registry.set_alias(entering, version)
    if leaving is not None and leaving != entering:
        current = registry.alias(leaving)
        if current is not None and str(current.version) == version:
            registry.delete_alias(leaving)


def _restore(registry: ModelRegistry, aliases: Mapping[str, str]) -> None:
    """Put the live aliases back as they were (best effort: the original error is raised)."""
    try:
        now = registry.alias_versions()
        for alias in ALIAS_OF.values():
            if alias in aliases and now.get(alias) != aliases[alias]:
                registry.set_alias(alias, aliases[alias])
            elif alias not in aliases and alias in now:
                registry.delete_alias(alias)
    except Exception:  # the failure being handled is the one to report
        pass


def decision_frame(
    decision: Decision,
    decision_id: str,
    decided_at: datetime,
    model_name: str,
    run_id: str | None,
) -> pl.DataFrame:
    """One row of a model-decisions table."""
    row = {
        "decision_id": decision_id,
        "decided_at": decided_at,
        "model_name": model_name,
        "challenger_version": decision.challenger_version,
        "champion_version": decision.champion_version,
        "decision": decision.decision,
        "reason": decision.reason,
        "challenger_roc_auc": decision.challenger_roc_auc,
        "champion_roc_auc": decision.champion_roc_auc,
        "challenger_calibration_error": decision.challenger_calibration_error,
        "dagster_run_id": run_id,
        "from_state": decision.from_state,
        "to_state": decision.to_state,
        "as_of_date": decision.as_of,
        "trigger": decision.trigger,
        "evidence": evidence_json(decision.evidence) if decision.evidence else None,
    }
    return pl.DataFrame([row], schema=DECISION_COLUMNS)
