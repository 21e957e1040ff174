"""Champion/challenger: compare on the same out-of-time rows, promote or reject, roll back.

The challenger is judged on its own out-of-time test rows (the training-set version and split
dates it was trained with, read back from its model-version tags); the current champion is
scored on exactly those rows. The ``champion`` alias moves to the challenger only if

* it beats the champion's ROC-AUC by at least ``roc_auc_margin``, and
* its expected calibration error is at most ``max_calibration_error``;

with no champion yet, the challenger must clear absolute floors instead
(``first_model_min_roc_auc``, ``first_model_max_calibration_error``). Every decision —
promote, reject, rollback, unchanged — is written as tags on the challenger's model version and
as a row of the use case's append-only model-decisions table.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import polars as pl
from mlflow.entities.model_registry import ModelVersion

from lakehouse.commit import CommitInfo
from lakehouse.storage import Lakehouse
from models.lifecycle.policy import PromotionPolicy
from models.lifecycle.registry import (
    CHALLENGER,
    CHAMPION,
    ORPHAN_TAG,
    ModelRegistry,
    RegistryError,
)
from models.lifecycle.shadow import matured_shadow_rows
from models.lifecycle.tables import DECISION_COLUMNS
from models.metrics import binary_metrics
from models.training.params import TimeSplit, split_from_tags
from models.training.train import predict
from models.usecase.spec import UseCase

SHADOW_EVIDENCE = "matured shadow-scoring"


@dataclass(frozen=True)
class Evaluated:
    """One model version scored on the comparison rows."""

    version: str
    metrics: dict[str, float]
    predictions: np.ndarray


@dataclass(frozen=True)
class Comparison:
    """Challenger and champion (if any) on the challenger's out-of-time rows."""

    rows: pl.DataFrame
    challenger: Evaluated
    champion: Evaluated | None
    note: str = ""
    evidence: str = "out-of-time"


@dataclass(frozen=True)
class Decision:
    """What happened to the ``champion`` alias, and why."""

    decision: str  # promote | reject | rollback | unchanged
    reason: str
    challenger_version: str
    champion_version: str | None  # the champion before the decision
    challenger_roc_auc: float | None = None
    champion_roc_auc: float | None = None
    challenger_calibration_error: float | None = None


def decide(
    challenger: Mapping[str, float],
    champion: Mapping[str, float] | None,
    policy: PromotionPolicy,
    rows: int,
    evidence: str = "out-of-time",
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
    policy: PromotionPolicy | None = None,
) -> Comparison:
    """The ``challenger`` and the ``champion`` on the same rows: matured shadow-scoring rows
    when the policy asks for them and there are enough, else the challenger's out-of-time rows.
    """
    challenger = registry.alias(CHALLENGER)
    if challenger is None:
        raise RegistryError(f"model {registry.model_name} has no {CHALLENGER!r} version")
    champion = registry.alias(CHAMPION)
    if policy is not None and policy.evidence != "out_of_time" and champion is not None:
        shadow = matured_shadow_rows(lake, use_case, str(champion.version), str(challenger.version))
        if shadow.height >= policy.min_shadow_rows or policy.evidence == "shadow":
            return _shadow_comparison(
                shadow, use_case, str(challenger.version), str(champion.version)
            )
    rows = out_of_time_rows(lake, use_case, challenger)
    note = ""
    if champion is not None and champion.version != challenger.version:
        champion_split = split_from_tags(champion.tags)
        challenger_split = split_from_tags(challenger.tags)
        if (
            isinstance(champion_split, TimeSplit)
            and isinstance(challenger_split, TimeSplit)
            and champion_split.validation_end >= challenger_split.test_start
        ):
            note = (
                f"champion v{champion.version} was fitted or early-stopped on outcomes "
                "overlapping these rows; its score here is optimistic"
            )
    return Comparison(
        rows,
        evaluate(registry, use_case, str(challenger.version), rows),
        evaluate(registry, use_case, str(champion.version), rows) if champion is not None else None,
        note,
    )


def _shadow_comparison(
    rows: pl.DataFrame, use_case: UseCase, challenger: str, champion: str
) -> Comparison:
    """Both versions judged on their stored shadow/served scores of the same entities."""

    def evaluated(version: str, column: str) -> Evaluated:
        scores = rows[column].to_numpy()
        labels = rows[use_case.label.definition.column].to_numpy()
        metrics = binary_metrics(labels, scores) if len(set(labels)) == 2 else {}
        return Evaluated(version, metrics, scores)

    return Comparison(
        rows,
        evaluated(challenger, "challenger_score"),
        evaluated(champion, "champion_score"),
        evidence=SHADOW_EVIDENCE,
    )


def promote_challenger(
    registry: ModelRegistry,
    lake: Lakehouse,
    use_case: UseCase,
    policy: PromotionPolicy,
    *,
    comparison: Comparison | None = None,
    dagster_run_id: str | None = None,
) -> Decision:
    """Move ``champion`` to the challenger if it wins (see the module docstring); record why."""
    comparison = comparison or compare(registry, lake, use_case, policy)
    challenger, champion = comparison.challenger, comparison.champion
    orphan = registry.version(challenger.version).tags.get(ORPHAN_TAG)
    if champion is not None and champion.version == challenger.version:
        verdict, reason = "unchanged", f"v{challenger.version} is already the champion"
    elif orphan:
        verdict, reason = "reject", f"v{challenger.version} is an orphan ({orphan}); champion kept"
    elif comparison.evidence == SHADOW_EVIDENCE and (
        comparison.rows.height < policy.min_shadow_rows or not challenger.metrics
    ):
        verdict = "reject"
        reason = (
            f"only {comparison.rows.height} {comparison.evidence} rows (policy needs "
            f"{policy.min_shadow_rows} with matured labels of both outcomes); champion kept"
        )
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
    decision = Decision(
        verdict,
        reason,
        challenger.version,
        champion.version if champion else None,
        challenger.metrics.get("roc_auc"),
        champion.metrics.get("roc_auc") if champion else None,
        challenger.metrics.get("ece"),
    )
    _apply(registry, lake, use_case, decision, target=challenger.version, run_id=dagster_run_id)
    return decision


def rollback(
    registry: ModelRegistry,
    lake: Lakehouse,
    use_case: UseCase,
    version: str | int,
    *,
    reason: str = "",
    dagster_run_id: str | None = None,
) -> Decision:
    """Point ``champion`` at an existing ``version`` (recorded as a ``rollback`` decision)."""
    target = registry.version(version)
    current = registry.alias(CHAMPION)
    previous = str(current.version) if current else None
    tags = target.tags
    decision = Decision(
        "rollback",
        f"champion re-pointed from {'v' + previous if previous else 'none'} to v{target.version}"
        + (f": {reason}" if reason else ""),
        str(target.version),
        previous,
        float(tags["test_roc_auc"]) if "test_roc_auc" in tags else None,
        None,
        float(tags["test_ece"]) if "test_ece" in tags else None,
    )
    _apply(registry, lake, use_case, decision, target=str(target.version), run_id=dagster_run_id)
    return decision


def _apply(
    registry: ModelRegistry,
    lake: Lakehouse,
    use_case: UseCase,
    decision: Decision,
    *,
    target: str,
    run_id: str | None,
) -> None:
    """Move the alias (promote/rollback), then record; undo the move if recording fails."""
    moves = decision.decision in ("promote", "rollback")
    if moves:
        registry.set_alias(CHAMPION, target)
    decided_at = datetime.now(UTC)
    decision_id = uuid.uuid4().hex
    try:
        registry.tag_version(
            decision.challenger_version,
            {
                "decision": decision.decision,
                "decision_reason": decision.reason[:5000],
                "decided_at": decided_at.isoformat(),
                "decision_id": decision_id,
            },
        )
        lake.append(
            use_case.tables.decisions,
            decision_frame(decision, decision_id, decided_at, registry.model_name, run_id),
            commit=CommitInfo(run_id=run_id, asset_key=f"ml/{use_case.name}_champion"),
        )
    except Exception:
        if moves:
            _restore(registry, decision.champion_version)
        raise


def _restore(registry: ModelRegistry, version: str | None) -> None:
    if version is None:
        registry.client.delete_registered_model_alias(registry.model_name, CHAMPION)
    else:
        registry.set_alias(CHAMPION, version)


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
    }
    return pl.DataFrame([row], schema=DECISION_COLUMNS)
