"""The scale profile's Dagster instance: runs, event log and schedules in PostgreSQL, and a run
queue that holds runs of one use case to one at a time (they write the same tables) and all runs
to ``SCOREHOUSE_MAX_CONCURRENT_RUNS``: one iteration of Dagster's own queue daemon decides."""

from __future__ import annotations

import pytest
import yaml
from dagster import DagsterRunStatus
from dagster._core.remote_origin import (
    RegisteredCodeLocationOrigin,
    RemoteJobOrigin,
    RemoteRepositoryOrigin,
)
from dagster._core.test_utils import create_run_for_test, instance_for_test
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import EmptyWorkspaceTarget
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import (
    QueuedRunCoordinatorDaemon,
)

from orchestration.profiles import USE_CASE_TAG, Profile, load_profile

pytestmark = pytest.mark.scale


def _origin(job: str) -> RemoteJobOrigin:
    repository = RemoteRepositoryOrigin(
        RegisteredCodeLocationOrigin("scorehouse"), "__repository__"
    )
    return RemoteJobOrigin(repository, job)


def test_the_run_queue_runs_one_run_per_use_case_at_a_time(
    scale_env: Profile, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCOREHOUSE_MAX_CONCURRENT_RUNS", "3")
    settings = yaml.safe_load(load_profile().dagster_yaml())
    # Dagster's recording launcher: the daemon's decisions, without starting processes.
    settings["run_launcher"] = {"module": "dagster._core.test_utils", "class": "MockedRunLauncher"}
    with instance_for_test(overrides=settings) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        queued = {
            use_case: [
                create_run_for_test(
                    instance,
                    job_name=f"{use_case}_daily_pipeline",
                    status=DagsterRunStatus.QUEUED,
                    tags={USE_CASE_TAG: use_case},
                    remote_job_origin=_origin(f"{use_case}_daily_pipeline"),
                ).run_id
                for _ in range(3)
            ]
            for use_case in ("churn", "shop", "telco", "credit")
        }
        with WorkspaceProcessContext(instance, EmptyWorkspaceTarget()) as workspace:
            list(QueuedRunCoordinatorDaemon(interval_seconds=1).run_iteration(workspace))
        launched = {run.run_id for run in instance.run_launcher.queue()}
        per_use_case = {u: len(launched & set(ids)) for u, ids in queued.items()}
        assert len(launched) == 3  # SCOREHOUSE_MAX_CONCURRENT_RUNS
        assert max(per_use_case.values()) == 1  # one run per use case at a time
        still = instance.get_runs_count()
        assert still == 12 and len(instance.get_run_ids()) == 12
