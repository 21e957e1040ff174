"""What a killed process leaves behind is found, never served, and cleaned up by
``scorehouse doctor`` (and, for dead runs, by the next ``scorehouse run``)."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from dagster import DagsterInstance, DagsterRun, DagsterRunStatus

from feature_repo.config import feature_store
from lakehouse.query import query
from lakehouse.storage import Lakehouse
from models.lifecycle import promotion
from models.lifecycle.registry import CHALLENGER, ORPHAN_TAG
from models.monitoring import inputs
from models.scoring.online import compare_online
from models.scoring.replay import find_runs, replay_run
from models.scoring.runs import current_predictions
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


def test_a_training_run_left_running_by_a_killed_run_is_ended(
    world: ScoredWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    """A process killed while it logged the model leaves its MLflow run RUNNING: the doctor
    names it and ``--repair`` ends it KILLED; a run whose Dagster run is alive is left alone."""
    instance = DagsterInstance.get()
    killed = _left_run(instance, DagsterRunStatus.STARTED, _dead_pid())
    alive = _left_run(instance, DagsterRunStatus.STARTED, doctor.os.getpid())
    client, experiment = world.registry.client, world.registry.experiment_id()
    stale = client.create_run(experiment, tags={"dagster_run_id": killed.run_id}).info.run_id
    live = client.create_run(experiment, tags={"dagster_run_id": alive.run_id}).info.run_id
    found = doctor.stale_training_runs(instance, world.registry)
    assert [run_id for run_id, _ in found] == [stale]
    assert main(["doctor"]) == 1
    assert f"churn MLflow run {stale}: run {killed.run_id} died" in capsys.readouterr().out
    assert main(["doctor", "--repair"]) == 0
    assert client.get_run(stale).info.status == "KILLED"
    assert client.get_run(live).info.status == "RUNNING"
    assert doctor.stale_training_runs(instance, world.registry) == []
    client.set_terminated(live, "FINISHED")
    instance.report_run_failed(instance.get_run_by_id(alive.run_id))  # type: ignore[arg-type]


class Killed(BaseException):
    """Stands for kill -9 at a commit: nothing after it runs (not an Exception: no handler
    of the code under test may swallow it)."""


@pytest.mark.parametrize("boundary", ["explanations", "predictions", "scoring_runs"])
def test_a_run_killed_at_each_commit_is_never_read_and_the_rerun_completes(
    world: ScoredWorld, monkeypatch: pytest.MonkeyPatch, boundary: str
) -> None:
    tables = world.use_case.tables.scoring
    target = getattr(tables, boundary)
    day = world.days[-1]
    lake, store = world.lake, feature_store(world.lake.uri)
    on_day = pl.col("as_of_date") == day
    current_before = current_predictions(lake, tables).filter(on_day).collect()
    counted_before = query(lake, f"SELECT count(*) AS n FROM {tables.predictions}").to_pylist()
    orphans_before = doctor.unrecorded_rows(lake, world.use_case)["rows"].sum()

    committed = Lakehouse._committed

    def kill_at_target(self: Lakehouse, spec, *args, **kwargs):  # type: ignore[no-untyped-def]
        if spec.name == target:
            raise Killed(f"killed at the commit of {target}")
        return committed(self, spec, *args, **kwargs)

    monkeypatch.setattr(Lakehouse, "_committed", kill_at_target)
    with pytest.raises(Killed):
        world.score(day)
    monkeypatch.setattr(Lakehouse, "_committed", committed)

    # No reader sees the partial run: current run, raw reads, SQL, monitoring, online.
    current = current_predictions(lake, tables).filter(on_day).collect()
    assert set(current["scoring_run_id"]) == set(current_before["scoring_run_id"])
    assert current.height == current_before.height
    assert query(lake, f"SELECT count(*) AS n FROM {tables.predictions}").to_pylist() == (
        counted_before
    )
    assert set(inputs.scored_runs(lake, world.use_case, [day])["scoring_run_id"]) == set(
        current_before["scoring_run_id"]
    )
    assert compare_online(store, lake, tables).entities == []
    # The doctor finds exactly what the killed run committed.
    left = doctor.unrecorded_rows(lake, world.use_case)
    expected = {"explanations": 0, "predictions": 1, "scoring_runs": 2}[boundary]
    new = left["rows"].sum() - orphans_before
    assert new == expected * current_before.height, left
    # The re-run completes, is current, complete and replays exactly.
    assert world.score(day).success
    rerun = current_predictions(lake, tables).filter(on_day).collect()
    assert rerun.height == current_before.height
    assert set(rerun["scoring_run_id"]) != set(current_before["scoring_run_id"])
    assert doctor.incomplete_runs(lake, world.use_case).is_empty()
    [record] = find_runs(lake, world.use_case, rerun["scoring_run_id"][0]).iter_rows(named=True)
    report = replay_run(
        lake,
        world.use_case,
        lambda pins: feature_store(lake.uri, pins=pins),
        world.registry,
        record,
    )
    assert report.matches, report.differences
