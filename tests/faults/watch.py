"""Where a running job is, read from its Dagster event log, and when to kill it.

The phase of a step comes from the assets it materializes (the job's asset layer), so the suite
names no step by hand. A kill point is drawn on the reference run's timeline of the phase (the
same job over the same days, uninterrupted): a uniformly random instant between the phase's
first step start and its last step end, expressed as (step, seconds into that step). The live
run is killed that long after the step's STEP_START event, or the moment the step ends if it
ends sooner (the kill then lands between that step and the next).
"""

from __future__ import annotations

import functools
import os
import random
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from dagster import (
    AssetCheckKey,
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    RunsFilter,
)
from dagster._core.definitions.dependency import NodeHandle
from dagster._core.instance.ref import InstanceRef

from models.usecase import UseCase, load_use_cases
from orchestration.doctor import PID_TAG
from orchestration.features.feast_assets import REGISTRY_KEY
from orchestration.scoring.assets import prediction_keys
from orchestration.usecase import build_definitions

PHASES = {
    "ingest": "ingest_and_features",
    "features": "ingest_and_features",
    "training": "weekly_retrain",
    "scoring": "daily_pipeline",
    "online": "daily_pipeline",
    "monitoring": "daily_pipeline",
}
"""Each phase and the job a case kills in it."""

POLL_S = 0.01
STEP_EVENTS = {DagsterEventType.STEP_START, DagsterEventType.STEP_SUCCESS}
FAILED_STEP = DagsterEventType.STEP_FAILURE

Timeline = dict[str, tuple[float, float | None]]
"""Step key → (start, end) wall-clock timestamps; end None while running."""


def phase_of(use_case: UseCase, key: AssetKey) -> str:
    """The phase an asset belongs to: scoring's own assets, the Feast registry (training),
    else by its layer (``ml``: the training set, model, evaluation, card and champion)."""
    if key in prediction_keys(use_case):
        return "scoring"
    if key == REGISTRY_KEY:
        return "training"
    phases = {"sources": "ingest", "bronze": "ingest", "silver": "ingest", "features": "features"}
    phases |= {"labels": "features", "ml": "training", "feast": "online"}
    phases |= {"monitoring": "monitoring"}
    return phases[key.path[0]]


def step_phases(use_case: UseCase, dagster_job: str) -> dict[str, str]:
    """Node → phase, for every node of the job (asset checks go with their asset)."""
    return dict(_step_phases(use_case.name, dagster_job))


@functools.cache
def _step_phases(name: str, dagster_job: str) -> tuple[tuple[str, str], ...]:
    use_cases = load_use_cases()
    use_case = use_cases[name]
    job = build_definitions(use_cases).resolve_job_def(dagster_job)
    phases = {}
    for node in job.graph.nodes:
        keys = job.asset_layer.get_selected_entity_keys_for_node(NodeHandle(node.name, None))
        assets = {k.asset_key if isinstance(k, AssetCheckKey) else k for k in keys}
        [phase] = {phase_of(use_case, key) for key in assets}
        phases[node.name] = phase
    return tuple(phases.items())


def instance_at(dagster_home: Path) -> DagsterInstance:
    return DagsterInstance.from_ref(InstanceRef.from_dir(str(dagster_home)))


def timeline(instance: DagsterInstance, run_id: str) -> Timeline:
    """The steps of a run so far."""
    steps: Timeline = {}
    for record in instance.all_logs(run_id, of_type={*STEP_EVENTS, FAILED_STEP}):
        event = record.dagster_event
        if event is None or event.step_key is None:
            continue
        if event.event_type == DagsterEventType.STEP_START:
            steps[event.step_key] = (record.timestamp, None)
        else:
            steps[event.step_key] = (steps[event.step_key][0], record.timestamp)
    return steps


@dataclass(frozen=True)
class KillPoint:
    step: str
    offset_s: float

    def __str__(self) -> str:
        return f"{self.offset_s:.2f}s into step {self.step}"


def node_of(step_key: str) -> str:
    """The job's node a step runs in: a graph-backed asset's ops run as ``node.op`` steps,
    a mapped op's as ``node.op[key]``."""
    return step_key.split(".", 1)[0].split("[", 1)[0]


def draw(reference: Timeline, phase_nodes: set[str], rng: random.Random) -> KillPoint:
    """A uniformly random instant of the phase (its nodes' steps) on the reference timeline."""
    spans = sorted(
        (start, end, step)
        for step, (start, end) in reference.items()
        if node_of(step) in phase_nodes
    )
    assert spans, f"the reference run has no step of the phase ({sorted(phase_nodes)})"
    first, last = spans[0][0], max(end or start for start, end, _ in spans)
    instant = rng.uniform(first, last)
    for start, end, step in spans:
        if instant <= (end or start):
            return KillPoint(step, max(0.0, instant - start))
    return KillPoint(spans[-1][2], 0.0)  # pragma: no cover - instant ≤ last by construction


@dataclass
class Kill:
    """What the killed run had done when the kill landed."""

    run_id: str
    point: KillPoint
    status: DagsterRunStatus
    steps: Timeline = field(default_factory=dict)

    @property
    def unfinished(self) -> bool:
        return self.status in (DagsterRunStatus.STARTED, DagsterRunStatus.STARTING)

    def describe(self) -> str:
        running = [s for s, (_, end) in self.steps.items() if end is None]
        done = [s for s, (_, end) in self.steps.items() if end is not None]
        return (
            f"run {self.run_id} killed {self.point} (status {self.status.value}); "
            f"running {running}; {len(done)} steps done"
        )


def _run_of(instance: DagsterInstance, pid: int) -> str | None:
    runs = instance.get_runs(filters=RunsFilter(tags={PID_TAG: str(pid)}), limit=1)
    return runs[0].run_id if runs else None


def kill_at(
    process: subprocess.Popen[bytes],
    dagster_home: Path,
    point: KillPoint,
    log: Path,
    limit_s: float,
) -> Kill:
    """SIGKILL the process group of ``process`` at ``point`` of its run (see the module doc)."""
    deadline = time.monotonic() + limit_s
    instance = instance_at(dagster_home)
    try:
        run_id = None
        while True:
            if process.poll() is not None:
                raise AssertionError(
                    f"the run ended (exit {process.returncode}) before {point}:\n"
                    + log.read_text()[-3000:]
                )
            assert time.monotonic() < deadline, f"{point} not reached in {limit_s}s"
            run_id = run_id or _run_of(instance, process.pid)
            if run_id is not None:
                steps = timeline(instance, run_id)
                if point.step in steps:
                    start, end = steps[point.step]
                    if end is not None or time.time() >= start + point.offset_s:
                        break
            time.sleep(POLL_S)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        run = instance.get_run_by_id(run_id)
        assert run is not None
        return Kill(run_id, point, run.status, timeline(instance, run_id))
    finally:
        instance.dispose()
