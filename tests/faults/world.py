"""A small simulated churn world for the kill -9 suite, driven through the real ``scorehouse`` CLI.

The world is built once per session at a fixed path (``<root>/world``) and kept as a pristine
copy (``<root>/template``). Every case restores that copy *to the same path* first: MLflow, Feast
and Dagster record absolute paths in their stores, so a copy elsewhere would write back into the
template. Each job a case kills is also run once, uninterrupted, from the template (the
*reference*): what it leaves is what the re-run after the kill must leave too.

``python -m tests.faults.world ROOT`` builds all of it in one process (its env, set by
``build``, fixes the simulated world; one process pays the imports once): the history through
``ingest_and_features`` (on an in-memory Dagster instance: a run over 144 daily partitions plans
thousands of events that the cases never read), then ``weekly_retrain`` (the first champion) and
``daily_pipeline`` over two days (predictions, online values, monitoring), both recorded in the
world's Dagster instance; then the template copy; then each reference, from the template, through
the CLI's own entry point (``orchestration.cli.main``), its outcome and step timeline saved.

Every process of the world shares one bytecode cache (``PYCACHE``): a cold ``scorehouse``
process spends seconds compiling the libraries it imports.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

CUSTOMERS, DAYS, SEED = 300, 150, 5
"""The smallest world whose first model passes the promotion floor with the default training
parameters (``scorehouse run`` takes no training config): 300 customers over 150 days."""
START = date(2025, 1, 1)
HISTORY_END = START + timedelta(days=143)
PRIOR_DAYS = (HISTORY_END + timedelta(days=1), HISTORY_END + timedelta(days=2))
"""Scored by the template's own ``daily_pipeline`` run."""
CASE_DAYS = (HISTORY_END + timedelta(days=3), HISTORY_END + timedelta(days=4))
"""The days the killed runs (and the references) ingest and score."""

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CLI_TIMEOUT_S = 900
PYCACHE = Path(tempfile.gettempdir()) / "scorehouse-faults-pycache"
"""Bytecode of every process of the world (the sources' mtimes keep it valid)."""


@dataclass(frozen=True)
class Job:
    """One ``scorehouse run churn JOB`` command line."""

    name: str
    days: tuple[date, date] | None = None

    @property
    def dagster_job(self) -> str:
        return f"churn_{self.name}"

    def argv(self) -> list[str]:
        args = ["run", "churn", self.name]
        if self.days is not None:
            args += ["--from", self.days[0].isoformat(), "--to", self.days[1].isoformat()]
        return args


JOBS = {
    "ingest_and_features": Job("ingest_and_features", CASE_DAYS),
    "weekly_retrain": Job("weekly_retrain"),
    "daily_pipeline": Job("daily_pipeline", CASE_DAYS),
}


def environment(home: Path) -> dict[str, str]:
    """The environment of every process of the world: its home and its simulated settings."""
    kept = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SCOREHOUSE_", "DAGSTER_", "MLFLOW_TRACKING"))
        and k != "PYTHONDONTWRITEBYTECODE"
    }
    return {
        **kept,
        "PYTHONPYCACHEPREFIX": str(PYCACHE),
        "SCOREHOUSE_HOME": str(home),
        "SCOREHOUSE_START_DATE": START.isoformat(),
        "SCOREHOUSE_SIM_CUSTOMERS": str(CUSTOMERS),
        "SCOREHOUSE_SIM_DAYS": str(DAYS),
        "SCOREHOUSE_SIM_SEED": str(SEED),
        "SCOREHOUSE_SIM_DRIFT_DAY": "",
        "SCOREHOUSE_USE_CASES": "churn",
        "PYTHONUNBUFFERED": "1",
    }


def scorehouse(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``scorehouse ARGS`` in the world; its exit status and output (stderr merged)."""
    return subprocess.run(
        [str(BIN / "scorehouse"), *args],
        cwd=ROOT,
        env=environment(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )


def spawn(home: Path, job: Job, log: Path) -> subprocess.Popen[bytes]:
    """``scorehouse run`` of ``job`` in its own process group (killed as a whole)."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(BIN / "scorehouse"), *job.argv()],
            cwd=ROOT,
            env=environment(home),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


@contextmanager
def home_env(home: Path) -> Iterator[None]:
    """The world's environment in this process, for reading it (lakehouse, Feast, MLflow)."""
    wanted = {k: v for k, v in environment(home).items() if k.startswith("SCOREHOUSE_")}
    # A fresh SQLite connection per MLflow call: a pooled one would keep reading the file that
    # the next case's restore deletes.
    wanted["MLFLOW_SQLALCHEMYSTORE_POOLCLASS"] = "NullPool"
    dropped = ("DAGSTER_HOME", "MLFLOW_TRACKING_URI", "SCOREHOUSE_LAKEHOUSE_URI")
    saved = {k: os.environ.get(k) for k in {*wanted, *dropped}}
    for key in dropped:
        os.environ.pop(key, None)
    os.environ.update(wanted)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@dataclass(frozen=True)
class Reference:
    """An uninterrupted run of a job from the template: its outcome and its steps' timeline."""

    outcome: Path
    timeline: dict[str, tuple[float, float | None]]


@dataclass(frozen=True)
class FaultWorld:
    """The session's world: built at ``live``, kept at ``pristine``, restored before each case."""

    root: Path
    live: Path
    pristine: Path
    references: dict[str, Reference]

    @property
    def home(self) -> Path:
        return self.live / "home"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    def restore(self) -> None:
        restore(self.pristine, self.live)


def restore(pristine: Path, live: Path) -> None:
    """Put the template back at the live path."""
    if live.exists():
        shutil.rmtree(live)
    shutil.copytree(pristine, live, symlinks=True)


def build_state(home: Path) -> None:
    """The template's runs, in this process (see the module docstring)."""
    from dagster import DagsterInstance

    from orchestration.runs import partition_range, run_job

    run_job(
        "churn_ingest_and_features",
        partition_range(START, HISTORY_END),
        instance=DagsterInstance.ephemeral(),
    )
    run_job("churn_weekly_retrain")
    run_job("churn_daily_pipeline", partition_range(*PRIOR_DAYS))


def build_reference(home: Path, job: Job, folder: Path) -> None:
    """Run ``job`` through the CLI's entry point, in this process; save what it leaves."""
    from dagster import DagsterInstance, RunsFilter

    from orchestration.cli import main
    from tests.faults import checks, watch

    assert main(job.argv()) == 0, f"the reference run of {job.name} failed"
    instance = DagsterInstance.get()
    try:
        [run] = instance.get_runs(filters=RunsFilter(job_name=job.dagster_job), limit=1)
        steps = watch.timeline(instance, run.run_id)
    finally:
        instance.dispose()
    checks.save_outcome(checks.outcome(checks.World.open(home)), folder)
    (folder / "timeline.json").write_text(json.dumps(steps))


def build(root: Path) -> None:
    """The template at ``root/template`` and every job's reference under ``root/reference``."""
    live, pristine = root / "world", root / "template"
    build_state(live / "home")
    shutil.copytree(live, pristine, symlinks=True)
    for job in JOBS.values():
        restore(pristine, live)
        build_reference(live / "home", job, root / "reference" / job.name)


def build_world(root: Path) -> FaultWorld:
    """``build`` in a fresh process with the world's environment; the world, restored."""
    live = root / "world"
    (live / "home").mkdir(parents=True)
    env = environment(live / "home")
    # A fresh SQLite connection per MLflow call: a pooled one would keep reading the file that
    # the next reference's restore deletes.
    env["MLFLOW_SQLALCHEMYSTORE_POOLCLASS"] = "NullPool"
    with (root / "build.log").open("wb") as out:
        built = subprocess.run(
            [sys.executable, "-m", "tests.faults.world", str(root)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=3 * CLI_TIMEOUT_S,
            check=False,
        )
    assert built.returncode == 0, (root / "build.log").read_text()[-5000:]
    references = {}
    for name in JOBS:
        folder = root / "reference" / name
        steps = json.loads((folder / "timeline.json").read_text())
        references[name] = Reference(folder, {k: (a, b) for k, (a, b) in steps.items()})
    world = FaultWorld(root, live, root / "template", references)
    world.restore()
    return world


if __name__ == "__main__":
    build(Path(sys.argv[1]))
