"""What a killed process leaves behind is found, never served, and cleaned up by
``scorehouse doctor`` (and, for dead runs, by the next ``scorehouse run``)."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRun, DagsterRunStatus

from models.lifecycle import promotion
from models.lifecycle.registry import CHALLENGER, ORPHAN_TAG
from orchestration import doctor
from orchestration.cli import main
from orchestration.runs import dagster_home
from tests.scored_world import ScoredWorld, scored_world, train_and_register


@pytest.fixture(scope="module")
def world(scored_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScoredWorld]:
    with scored_world(scored_template, tmp_path_factory.mktemp("leftovers")) as built:
        yield built


@pytest.fixture(autouse=True)
def home(world: ScoredWorld, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = world.root / "home"
    monkeypatch.setenv("SCOREHOUSE_HOME", str(home))
    monkeypatch.setenv("SCOREHOUSE_LAKEHOUSE_URI", str(world.lake.uri))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    dagster_home()
    return home


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def _left_run(instance: DagsterInstance, status: DagsterRunStatus, pid: int) -> DagsterRun:
    tags = {doctor.PID_TAG: str(pid), doctor.HOST_TAG: doctor.socket.gethostname()}
    run = DagsterRun(
        job_name="churn_daily_pipeline", run_id=str(uuid.uuid4()), status=status, tags=tags
    )
    return instance.add_run(run)


def test_runs_of_a_dead_process_are_marked_failed(capsys: pytest.CaptureFixture[str]) -> None:
    instance = DagsterInstance.get()
    started = _left_run(instance, DagsterRunStatus.STARTED, _dead_pid())
    queued = _left_run(instance, DagsterRunStatus.NOT_STARTED, _dead_pid())
    alive = _left_run(instance, DagsterRunStatus.STARTED, doctor.os.getpid())
    found = {run.run_id for run, _ in doctor.dead_runs(instance)}
    assert found == {started.run_id, queued.run_id}
    assert main(["doctor"]) == 1
    assert "runs left unfinished by a dead process: 2" in capsys.readouterr().out
    assert main(["doctor", "--repair"]) == 0
    statuses = {
        r: instance.get_run_by_id(r).status for r in (started.run_id, queued.run_id, alive.run_id)
    }  # type: ignore[union-attr]
    assert statuses == {
        started.run_id: DagsterRunStatus.FAILURE,
        queued.run_id: DagsterRunStatus.FAILURE,
        alive.run_id: DagsterRunStatus.STARTED,
    }
    instance.report_run_failed(instance.get_run_by_id(alive.run_id))  # type: ignore[arg-type]


def test_a_version_registered_by_a_failed_run_is_an_orphan_and_never_promoted(
    world: ScoredWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    instance = DagsterInstance.get()
    killed = _left_run(instance, DagsterRunStatus.STARTED, _dead_pid())
    version = train_and_register(world.lake, world.registry, world.use_case, seed=5)
    world.registry.tag_version(version, {"dagster_run_id": killed.run_id})
    world.registry.set_alias(CHALLENGER, version)
    found = doctor.orphan_versions(instance, world.registry, world.lake, world.use_case)
    assert [v for v, _ in found] == [version]
    assert main(["doctor", "--repair"]) == 0
    assert f"churn v{version}: run {killed.run_id} died" in capsys.readouterr().out
    assert ORPHAN_TAG in world.registry.version(version).tags
    champion = world.champion
    decision = promotion.promote_challenger(
        world.registry, world.lake, world.use_case, world.use_case.promotion
    )
    assert decision.decision == "reject" and "orphan" in decision.reason, decision
    assert str(world.registry.alias("champion").version) == champion  # type: ignore[union-attr]
