"""Running a use case's jobs from the command line, as runs of those jobs.

Each run goes to the Dagster instance (``DAGSTER_HOME``, default ``SCOREHOUSE_HOME/dagster``)
as a run of its job in the code location (a reconstructable job executed in this process, one
process for all steps), so ``dagster dev`` lists it under its job with its logs and metadata.
"""

from __future__ import annotations

import os
import time
from datetime import date
from pathlib import Path

from dagster import AssetKey, DagsterInstance, JobExecutionResult, execute_job
from dagster._core.definitions.reconstruct import ReconstructableRepository
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from lakehouse import config
from lakehouse.config import project_root
from orchestration import profiles
from orchestration.doctor import process_tags, sweep_dead_runs
from orchestration.errors import RunFailedError

CONSOLE = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
"""The console shows step progress and asset logs, not Dagster's per-event debug lines. The
executor comes from the profile: embedded runs are one process (steps share the imported
libraries; a process per step costs more), the scale profile's steps run on its executor."""


DAGSTER_YAML = """\
telemetry:
  enabled: false
run_monitoring:
  enabled: true
  start_timeout_seconds: 180
  max_resume_run_attempts: 0
"""
"""The embedded instance's settings: local SQLite storage (Dagster's default), no telemetry,
and run monitoring (the daemon fails runs stuck starting; ``scorehouse doctor`` finds runs whose
process died)."""


PROFILE_MARK = "# Written by scorehouse for the {} profile; edit freely (then it is kept).\n"


def dagster_home() -> str:
    """``DAGSTER_HOME``, defaulting to ``SCOREHOUSE_HOME/dagster`` (created if needed), with the
    instance settings of the profile in effect (``orchestration.profiles``).

    ``dagster.yaml`` is written when missing, empty, or as written before for a profile; a
    file edited by hand is kept. The scale profile's file names the PostgreSQL URL, so it is
    readable by its owner only.
    """
    profile = profiles.activate()
    home = os.environ.get("DAGSTER_HOME") or str(config.scorehouse_home() / "dagster")
    os.makedirs(home, exist_ok=True)
    settings = os.path.join(home, "dagster.yaml")
    wanted = DAGSTER_YAML if profile.name == "embedded" else profile.dagster_yaml()
    if profile.name != "embedded":
        wanted = PROFILE_MARK.format(profile.name) + wanted
    current = Path(settings).read_text() if os.path.exists(settings) else ""
    ours = current in ("", DAGSTER_YAML) or current.startswith(PROFILE_MARK.split("{}")[0])
    if ours and current != wanted:
        # Embedded: the defaults (SQLite in this folder) without telemetry: nothing leaves.
        descriptor = os.open(settings, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(wanted)
    os.environ["DAGSTER_HOME"] = home
    return home


def partition_range(first: date, last: date) -> dict[str, str]:
    """Tags of a single run over the daily partitions ``first..last``."""
    return {
        ASSET_PARTITION_RANGE_START_TAG: first.isoformat(),
        ASSET_PARTITION_RANGE_END_TAG: last.isoformat(),
    }


def run_job(
    job: str,
    tags: dict[str, str] | None = None,
    *,
    asset_selection: list[AssetKey] | None = None,
    run_config: dict | None = None,
    instance: DagsterInstance | None = None,
    log: bool = True,
) -> str:
    """Run ``job`` (or a selection of its assets) as a run of that job; its run id."""
    dagster_home()
    profile = profiles.load_profile()
    profile.check_services()  # a service down fails here, before the run writes anything
    instance = instance or DagsterInstance.get()
    for run_id in sweep_dead_runs(instance):  # leftovers of a killed process, first
        print(f"[scorehouse] run {run_id} of a dead process marked failed", flush=True)
    started = time.perf_counter()
    what = job
    if asset_selection is not None:
        what += f" [{', '.join(k.to_user_string() for k in asset_selection)}]"
    if log:
        print(f"[scorehouse] {what} …", flush=True)
    repository = ReconstructableRepository.for_module(
        "orchestration.definitions", "defs", working_directory=str(project_root())
    )
    result = execute_job(
        repository.get_reconstructable_job(job),
        instance=instance,
        tags={**(tags or {}), **process_tags()},
        asset_selection=asset_selection,
        run_config={**CONSOLE, **profile.run_config(), **(run_config or {})},
    )
    if not result.success:
        raise RunFailedError(f"job {job} failed (run {result.run_id}): {_first_failure(result)}")
    if log:
        elapsed = time.perf_counter() - started
        print(f"[scorehouse] {job} done in {elapsed:.0f}s (run {result.run_id})", flush=True)
    return result.run_id


def _first_failure(result: JobExecutionResult) -> str:
    """The failed step and its error message, or a pointer to the run's logs."""
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data is not None:
            error = event.step_failure_data.error
            while error is not None and error.cause is not None:  # Dagster wraps the user error
                error = error.cause
            message = error.message.strip() if error is not None else "no error recorded"
            return f"step {event.step_key}: {message}"
    return "see the run's logs in the Dagster UI"
