"""kill -9 of ``scorehouse run`` at a random point of each phase, then what must still hold.

Each case restores the session's world, starts ``scorehouse run churn JOB`` in its own process
group, and SIGKILLs the group at a random instant of one phase (ingest, features, training,
scoring, online materialization, monitoring), located from the run's Dagster event log. Then:

* every Delta table opens at its latest version with deltalake and with polars, and no table
  holds two rows with one primary key;
* every recorded scoring run has exactly its recorded rows, and an explanation for each
  prediction;
* ``scorehouse tables`` lists every written table, ``scorehouse doctor`` names the dead run;
* the online store still answers for every active entity (every never-null feature, a score);
* the dead run is marked failed — by ``scorehouse doctor --repair`` (even seeds) or by the
  re-run itself (odd seeds);
* the re-run completes, and leaves what an uninterrupted run of the job leaves (the reference:
  every table as readers see it, the online values, the champion model), the online
  predictions match the recorded runs, and ``scorehouse doctor`` then finds nothing.

The killed run and the re-run are ``scorehouse`` processes; ``tables`` and ``doctor`` go through
the same entry point (``orchestration.cli.main``) in this process, which has the libraries
imported already.

Seed 0 of each phase is the fast tier; seeds 1 … ``SCOREHOUSE_FAULT_SEEDS`` − 1 (default 5 seeds
in all) are marked slow.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from dagster import DagsterRunStatus

from feature_repo.config import feature_store
from models.scoring.online import compare_online
from orchestration.cli import main
from tests.faults import checks, watch
from tests.faults.world import JOBS, FaultWorld, home_env, scorehouse, spawn

SLOW_SEEDS = int(os.environ.get("SCOREHOUSE_FAULT_SEEDS", "5"))
CASES = [
    pytest.param(phase, seed, marks=[pytest.mark.slow] if seed else [], id=f"{phase}-{seed}")
    for seed in range(SLOW_SEEDS)
    for phase in watch.PHASES
]
KILL_LIMIT_S = 600

pytestmark = pytest.mark.timeout(2400)


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """``scorehouse ARGV`` through its entry point in this process: exit status and output."""
    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _state_problems(world: checks.World, active: list[str], scored: list[str]) -> list[str]:
    frames, problems = checks.read_every_table(world)
    return [
        *problems,
        *checks.scoring_problems(world, frames),
        *checks.online_problems(world, active, scored),
    ]


def _status(world: FaultWorld, run_id: str) -> DagsterRunStatus:
    instance = watch.instance_at(world.dagster_home)
    try:
        run = instance.get_run_by_id(run_id)
        assert run is not None
        return run.status
    finally:
        instance.dispose()


@pytest.mark.parametrize(("phase", "seed"), CASES)
def test_a_run_killed_in_a_phase_leaves_a_consistent_world_and_the_rerun_completes(
    fault_world: FaultWorld,
    phase: str,
    seed: int,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    world, home = fault_world, fault_world.home
    job = JOBS[watch.PHASES[phase]]
    world.restore()
    with home_env(home):
        opened = checks.World.open(home)
        active, scored = checks.active_entities(opened)
        steps = watch.step_phases(opened.use_case, job.dagster_job)
    reference = world.references[job.name]
    point = watch.draw(
        reference.timeline,
        {step for step, p in steps.items() if p == phase},
        random.Random(f"{phase}/{seed}"),
    )

    log = tmp_path / "killed.log"
    kill = watch.kill_at(spawn(home, job, log), world.dagster_home, point, log, KILL_LIMIT_S)
    context = kill.describe()

    repair_first = seed % 2 == 0
    with home_env(home):
        problems = _state_problems(checks.World.open(home), active, scored)
        assert not problems, f"{context}: {problems}"

        code, listed = _cli(capsys, "tables")
        assert code == 0, listed[-3000:]
        written = [s.name for s in opened.lake.catalog if opened.lake.exists(s.name)]
        assert all(name in listed for name in written), listed

        if kill.unfinished:
            code, found = _cli(capsys, "doctor", *(["--repair"] if repair_first else []))
            assert kill.run_id in found, f"{context}:\n{found[-3000:]}"
            assert code == (0 if repair_first else 1), f"{context}:\n{found[-3000:]}"
    if kill.unfinished and repair_first:
        assert _status(world, kill.run_id) == DagsterRunStatus.FAILURE, context

    rerun = scorehouse(home, *job.argv())
    assert rerun.returncode == 0, f"{context}; re-run:\n{rerun.stdout[-3000:]}"
    if kill.unfinished:
        assert _status(world, kill.run_id) == DagsterRunStatus.FAILURE, context
        if not repair_first:
            assert f"run {kill.run_id} of a dead process marked failed" in rerun.stdout

    with home_env(home):
        after = checks.World.open(home)
        active, scored = checks.active_entities(after)
        problems = _state_problems(after, active, scored)
        problems += checks.differences(
            checks.outcome(after), checks.load_outcome(reference.outcome)
        )
        online = compare_online(feature_store(), after.lake, after.use_case.tables.scoring)
        assert not problems, f"{context}: {problems}"
        assert online.entities == [], f"{context}: {online.differing}"

        if not repair_first:  # a version orphaned by the kill is only tagged by a repair
            _cli(capsys, "doctor", "--repair")
        code, final = _cli(capsys, "doctor")
        assert code == 0, f"{context}:\n{final[-3000:]}"
