"""A run of SCOREHOUSE_BENCH_STEPS mapped no-op steps on SCOREHOUSE_EXECUTOR (in_process,
multiprocess, celery), for benchmarks/bench_scale.py: prints the run's wall seconds. Celery
needs SCOREHOUSE_PROFILE_FILE (the services); a worker is started for the run and stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dagster import (
    DagsterInstance,
    DynamicOut,
    DynamicOutput,
    execute_job,
    job,
    op,
    reconstructable,
)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orchestration.profiles import activate, celery_worker_command, executor_definition
from orchestration.resources import STEP_IO, StepOutputIOManager

PROFILE = activate()
STEPS = int(os.environ.get("SCOREHOUSE_BENCH_STEPS", "8"))


@op(out=DynamicOut(io_manager_key=STEP_IO))
def fan():
    for i in range(STEPS):
        yield DynamicOutput(i, mapping_key=f"s{i}")


@op
def step(value: int) -> int:
    return value


@op
def gather(values: list) -> int:
    return len(values)


def probe_job():
    executor = executor_definition(PROFILE)

    @job(
        resource_defs={STEP_IO: StepOutputIOManager(), "io_manager": StepOutputIOManager()},
        **({"executor_def": executor} if executor is not None else {}),
    )
    def probe() -> None:
        gather(fan().map(step).collect())

    return probe


def main() -> None:
    with tempfile.TemporaryDirectory() as home:
        os.environ["DAGSTER_HOME"] = home
        from orchestration.runs import dagster_home

        dagster_home()
        instance = DagsterInstance.get()
        worker = None
        if PROFILE.executor == "celery":
            worker = subprocess.Popen(
                celery_worker_command(PROFILE, sys.executable),
                cwd=Path(__file__).resolve().parent.parent,
                env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent)},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(15)  # the worker imports the project once
        try:
            config = PROFILE.run_config()
            started = time.perf_counter()
            result = execute_job(reconstructable(probe_job), instance=instance, run_config=config)
            elapsed = time.perf_counter() - started
            assert result.success
        finally:
            if worker is not None:
                worker.send_signal(signal.SIGTERM)
                worker.wait(timeout=60)
    print(elapsed)


if __name__ == "__main__":
    main()
