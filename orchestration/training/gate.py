"""The promotion gate of a use case: asset ``ml/<uc>_promotion_gate``, job
``<uc>_promotion_gate``, its schedule and its sensor.

The asset runs one pass of ``models.lifecycle.gate.run_gate``: a candidate enters shadow (or is
rejected), a shadow model is promoted, rejected or held on paired matured outcomes. Every move
is recorded in ``ml.<uc>_model_decisions`` with its evidence; the asset's metadata shows the
moves, what is held and why, and the shadow evidence table.

The schedule runs it daily (``schedules.gate`` of the spec); the sensor launches it when a new
candidate is registered or a new scoring run finished while a model is in shadow (new outcomes
may have matured). Concurrent runs are serialized by the gate's lock; the later one records a
``no-op`` when the first changed what it had read.

No ``from __future__ import annotations``: the generated ``Config`` class is an annotation.
"""

import json

import polars as pl
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    MaterializeResult,
    MetadataValue,
    RunRequest,
    ScheduleDefinition,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    asset,
    sensor,
)
from dagster._core.definitions.unresolved_asset_job_definition import (
    UnresolvedAssetJobDefinition,
)

from models.lifecycle.evidence import PairedEvidence
from models.lifecycle.gate import read_state, run_gate
from models.lifecycle.registry import SHADOW
from models.markdown import markdown_table
from models.scoring.runs import SERVING_ALIAS
from models.usecase.spec import UseCase
from orchestration.config import config_class, to_dataclass
from orchestration.locks import promotion_gate
from orchestration.resources import LakehouseResource, ModelRegistryResource


def gate_key(use_case: UseCase) -> AssetKey:
    return AssetKey(["ml", f"{use_case.name}_promotion_gate"])


def evidence_table(evidence: PairedEvidence) -> str:
    """Champion vs shadow on the paired rows, and the differences with their intervals."""
    rows = []
    for name in ("roc_auc", "pr_auc", "ece", "calibration_in_the_large", "business_value"):
        row = {
            "metric": name,
            "champion": f"{evidence.champion[name]:.4f}",
            "shadow": f"{evidence.shadow[name]:.4f}",
        }
        interval = evidence.difference.get(name)
        row["shadow − champion"] = (
            f"{interval.estimate:+.4f} [{interval.low:+.4f}, {interval.high:+.4f}]"
            if interval
            else "—"
        )
        rows.append(row)
    return markdown_table(pl.DataFrame(rows))


def gate_asset(use_case: UseCase, deps: list[AssetKey]) -> AssetsDefinition:
    """One pass of the promotion gate (see the module docstring)."""
    policy_type = config_class(f"{use_case.name}_promotion_config", use_case.promotion)

    @asset(
        key=gate_key(use_case),
        deps=deps,
        group_name=f"{use_case.name}_training",
        kinds={"mlflow"},
        description="Promotion gate: candidate → shadow → champion (or rejected) on paired "
        "matured outcomes of shadow scoring, with bootstrap intervals; moves recorded.",
    )
    def _gate(
        context: AssetExecutionContext,
        config: policy_type,  # type: ignore[valid-type]
        lakehouse: LakehouseResource,
        model_registry: ModelRegistryResource,
    ) -> MaterializeResult:
        registry = model_registry.get(use_case)
        policy = to_dataclass(config, type(use_case.promotion))
        outcome = run_gate(
            registry,
            lakehouse.get(),
            use_case,
            policy,
            dagster_run_id=context.run.run_id,
            # The profile's lock: an advisory lock of a shared registry, else a file lock.
            lock=lambda: promotion_gate(registry.uri, registry.model_name),
        )
        for decision in outcome.decisions:
            context.log.info(
                f"v{decision.challenger_version} {decision.decision}: {decision.reason}"
            )
        for line in outcome.held:
            context.log.info(line)
        state = read_state(registry)
        metadata: dict = {
            "data_day": str(outcome.today),
            "champion_version": state.champion or "none",
            "shadow_version": state.shadow or "none",
            "candidates": ", ".join(state.candidates) or "none",
            "decisions": MetadataValue.md(
                markdown_table(
                    pl.DataFrame(
                        [
                            {
                                "version": d.challenger_version,
                                "decision": d.decision,
                                "from": d.from_state or "",
                                "to": d.to_state or "",
                                "reason": d.reason,
                            }
                            for d in outcome.decisions
                        ],
                        schema=dict.fromkeys(
                            ["version", "decision", "from", "to", "reason"], pl.String
                        ),
                    )
                )
            ),
            "held": "; ".join(outcome.held) or "nothing",
        }
        if outcome.evidence is not None:
            metadata["shadow_evidence"] = MetadataValue.md(evidence_table(outcome.evidence))
            metadata["matured_paired_rows"] = outcome.evidence.rows
        return MaterializeResult(metadata=metadata)

    return _gate


def gate_schedule(use_case: UseCase, job: UnresolvedAssetJobDefinition) -> ScheduleDefinition:
    return ScheduleDefinition(
        name=f"{use_case.name}_promotion_gate_schedule",
        job=job,
        cron_schedule=use_case.schedules.gate,
        execution_timezone="UTC",
        default_status=DefaultScheduleStatus.STOPPED,
        tags={"scorehouse/trigger": "schedule"},
    )


def gate_sensor(use_case: UseCase, job_name: str) -> SensorDefinition:
    """Launches the gate on a new candidate, or on new scoring runs while a model is in shadow.
    Cursor: JSON ``{"candidates": [...], "scored": <finished_at of the newest scoring run>}``."""
    runs_table = use_case.tables.scoring.scoring_runs

    @sensor(
        name=f"{use_case.name}_promotion_gate_sensor",
        job_name=job_name,
        minimum_interval_seconds=300,
        default_status=DefaultSensorStatus.STOPPED,
        description=f"Launches {job_name} when a candidate is registered or a model in shadow "
        "has been scored again.",
    )
    def _watch(
        context: SensorEvaluationContext,
        lakehouse: LakehouseResource,
        model_registry: ModelRegistryResource,
    ) -> SensorResult:
        cursor = json.loads(context.cursor) if context.cursor else {}
        state = read_state(model_registry.get(use_case))
        lake = lakehouse.get()
        scored = None
        if state.shadow is not None and lake.exists(runs_table):
            newest = (
                lake.scan(runs_table)
                .filter(pl.col("model_alias") == SERVING_ALIAS)
                .select(pl.col("finished_at").max())
                .collect()
                .item()
            )
            scored = newest.isoformat() if newest is not None else None
        new_candidates = sorted(set(state.candidates) - set(cursor.get("candidates", [])))
        new_scores = (
            state.shadow is not None and scored is not None and scored != cursor.get("scored")
        )
        advanced = json.dumps({"candidates": sorted(state.candidates), "scored": scored})
        if not new_candidates and not new_scores:
            return SensorResult(
                skip_reason=SkipReason("no new candidate, no new shadow scores"), cursor=advanced
            )
        why = (
            f"candidate v{', v'.join(new_candidates)}"
            if new_candidates
            else f"{SHADOW} v{state.shadow} scored again ({scored})"
        )
        request = RunRequest(
            run_key=f"{use_case.name}:gate:{state.champion}:{state.shadow}:{','.join(state.candidates)}:{scored}",
            tags={"scorehouse/trigger": "sensor", "scorehouse/reasons": why},
        )
        return SensorResult(run_requests=[request], cursor=advanced)

    return _watch
