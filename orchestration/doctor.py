"""``scorehouse doctor``: what a killed process leaves behind, found and (with ``--repair``) fixed.

* **Dagster runs** left ``STARTED``/``STARTING``/``NOT_STARTED`` by a process that no longer
  exists. Runs launched by ``scorehouse run``/``demo`` carry their process id, host and process
  start time as tags; such a run whose process is gone is marked failed. (Runs launched by the
  Dagster UI or daemon on the embedded instance are found by the pid of their first engine
  event.) ``scorehouse run`` sweeps these before each run, so the next run also cleans up.
* **Orphan model versions**: registered by a Dagster run that failed or died, and never decided
  on. They are tagged ``scorehouse.orphan`` (with the reason) and promotion refuses them.
* **Stale training runs**: MLflow runs still ``RUNNING`` whose Dagster run failed or died (the
  process was killed while it logged the model); ``--repair`` ends them ``KILLED``.
* **Unrecorded scoring rows**: prediction and explanation rows of a scoring run with no row in
  ``ml.<uc>_scoring_runs`` (the run died between its commits). Readers never see them (the run
  record is the commit point); the doctor lists them. And the converse check: every recorded
  run has exactly its recorded number of prediction and explanation rows.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
from dagster import DagsterEventType, DagsterInstance, DagsterRun, DagsterRunStatus, RunsFilter
from dagster._core.storage.runs import SqliteRunStorage

from lakehouse.storage import Lakehouse
from models.lifecycle.registry import ORPHAN_TAG, ModelRegistry
from models.scoring.runs import SERVING_ALIAS
from models.usecase import UseCase

PID_TAG, HOST_TAG, START_TAG = "scorehouse/pid", "scorehouse/host", "scorehouse/pid_start"
UNFINISHED = [DagsterRunStatus.STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.NOT_STARTED]
FAILED = {DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}


def process_tags() -> dict[str, str]:
    """Tags naming this process, for a run executed in it."""
    return {
        PID_TAG: str(os.getpid()),
        HOST_TAG: socket.gethostname(),
        START_TAG: _start_ticks(os.getpid()) or "",
    }


def _start_ticks(pid: int) -> str | None:
    """The process's start time since boot (Linux), so a recycled pid is not taken as alive."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(tags: dict[str, str]) -> bool | None:
    """Is the run's process alive? None when the run names no process of this host."""
    if PID_TAG not in tags or tags.get(HOST_TAG) != socket.gethostname():
        return None
    pid = int(tags[PID_TAG])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    started = tags.get(START_TAG)
    return not started or _start_ticks(pid) == started


@dataclass
class Findings:
    dead_runs: list[str] = field(default_factory=list)
    orphan_versions: list[tuple[str, str, str]] = field(default_factory=list)
    stale_training_runs: list[tuple[str, str, str]] = field(default_factory=list)
    unrecorded: pl.DataFrame | None = None
    incomplete: pl.DataFrame | None = None

    @property
    def problems(self) -> int:
        count = len(self.dead_runs) + len(self.orphan_versions) + len(self.stale_training_runs)
        for frame in (self.unrecorded, self.incomplete):
            count += 0 if frame is None else frame.height
        return count


def _process_of(instance: DagsterInstance, run: DagsterRun) -> dict[str, str]:
    """The run's process: its tags, else (a run the local daemon or ``dagster dev`` launched)
    the pid of its first engine event, on this host."""
    tags = dict(run.tags)
    if PID_TAG in tags:
        return tags
    if not isinstance(instance.run_storage, SqliteRunStorage):
        return {}  # a shared instance: its runs may live on other machines
    for record in instance.all_logs(run.run_id, of_type=DagsterEventType.ENGINE_EVENT):
        event = record.dagster_event
        data = event.engine_event_data if event is not None else None
        pid = data.metadata.get("pid") if data is not None else None
        if pid is not None:
            return {PID_TAG: str(pid.value), HOST_TAG: socket.gethostname()}
    return {}


def dead_runs(instance: DagsterInstance) -> Iterator[tuple[DagsterRun, str]]:
    """(run, why) of every unfinished run whose process is gone."""
    for run in instance.get_runs(filters=RunsFilter(statuses=UNFINISHED)):
        process = _process_of(instance, run)
        if _alive(process) is False:
            yield run, f"process {process[PID_TAG]} on {process[HOST_TAG]} is gone"


def sweep_dead_runs(instance: DagsterInstance) -> list[str]:
    """Mark every run of a dead process failed; their run ids."""
    swept = []
    for run, why in dead_runs(instance):
        instance.report_run_failed(run, f"marked failed by scorehouse: {why}")
        swept.append(run.run_id)
    return swept


def orphan_versions(
    instance: DagsterInstance, registry: ModelRegistry, lake: Lakehouse, use_case: UseCase
) -> list[tuple[str, str]]:
    """(version, why) of versions registered by a failed or dead run and never decided on."""
    decided: set[str] = set()
    if lake.exists(use_case.tables.decisions):
        decided = set(lake.read(use_case.tables.decisions)["challenger_version"].to_list())
    found = []
    for version in registry.versions():
        tags = version.tags
        if ORPHAN_TAG in tags or str(version.version) in decided:
            continue
        why = _ended_badly(instance, tags.get("dagster_run_id", ""))
        if why is not None:
            found.append((str(version.version), why))
    return found


def _ended_badly(instance: DagsterInstance, run_id: str) -> str | None:
    """How the Dagster run ``run_id`` ended, if it failed or died; None otherwise."""
    run = instance.get_run_by_id(run_id) if run_id else None
    if run is None:
        return None
    if run.status in FAILED:
        return f"run {run.run_id} ended {run.status.value}"
    if run.status in UNFINISHED and _alive(_process_of(instance, run)) is False:
        return f"run {run.run_id} died ({run.status.value})"
    return None


def stale_training_runs(
    instance: DagsterInstance, registry: ModelRegistry
) -> list[tuple[str, str]]:
    """(MLflow run id, why) of training runs still RUNNING whose Dagster run failed or died:
    a process killed while it logged the model never ends its MLflow run."""
    experiment = registry.client.get_experiment_by_name(registry.model_name)
    if experiment is None:
        return []
    running = registry.client.search_runs(
        [experiment.experiment_id], filter_string="attributes.status = 'RUNNING'"
    )
    found = []
    for run in running:
        why = _ended_badly(instance, run.data.tags.get("dagster_run_id", ""))
        if why is not None:
            found.append((run.info.run_id, why))
    return found


def unrecorded_rows(lake: Lakehouse, use_case: UseCase) -> pl.DataFrame:
    """Rows per (table, scoring run) of runs the scoring-runs table does not record."""
    tables = use_case.tables.scoring
    if not lake.exists(tables.scoring_runs):
        recorded = pl.LazyFrame(schema={"scoring_run_id": pl.String})
    else:
        recorded = lake.scan(tables.scoring_runs).select("scoring_run_id")
    frames = []
    for table in (
        tables.predictions,
        tables.explanations,
        tables.shadow_predictions,
        tables.shadow_explanations,
    ):
        if not lake.exists(table):
            continue
        frames.append(
            lake.scan(table, unrecorded=True)
            .join(recorded, on="scoring_run_id", how="anti")
            .group_by("scoring_run_id", "as_of_date")
            .agg(pl.len().alias("rows"))
            .with_columns(pl.lit(table).alias("table"))
            .select("table", "scoring_run_id", "as_of_date", "rows")
            .collect()
        )
    schema = {
        "table": pl.String,
        "scoring_run_id": pl.String,
        "as_of_date": pl.Date,
        "rows": pl.UInt32,
    }
    if not frames:
        return pl.DataFrame(schema=schema)
    return pl.concat(frames).sort("table", "as_of_date", "scoring_run_id")


def incomplete_runs(lake: Lakehouse, use_case: UseCase) -> pl.DataFrame:
    """Recorded runs whose prediction or explanation rows differ from the recorded count."""
    tables = use_case.tables.scoring
    if not lake.exists(tables.scoring_runs):
        return pl.DataFrame()
    runs = lake.read(tables.scoring_runs).select("scoring_run_id", "model_alias", "rows")
    problems = []
    for served in (True, False):
        predictions, explanations = tables.outputs(served)
        chosen = runs.filter((pl.col("model_alias") == SERVING_ALIAS) == served)
        if chosen.is_empty():
            continue
        counts = chosen
        for name, table in (("predicted", predictions), ("explained", explanations)):
            found = (
                lake.scan(table)
                .group_by("scoring_run_id")
                .agg(pl.len().cast(pl.Int64).alias(name))
                .collect()
                if lake.exists(table)
                else pl.DataFrame(schema={"scoring_run_id": pl.String, name: pl.Int64})
            )
            counts = counts.join(found, on="scoring_run_id", how="left").with_columns(
                pl.col(name).fill_null(0)
            )
        problems.append(
            counts.filter(
                (pl.col("predicted") != pl.col("rows")) | (pl.col("explained") != pl.col("rows"))
            )
        )
    return pl.concat(problems) if problems else pl.DataFrame()


def examine(instance: DagsterInstance, use_cases: list[UseCase], lake: Lakehouse) -> Findings:
    """Everything the doctor looks for, across ``use_cases``."""
    findings = Findings(dead_runs=[run.run_id for run, _ in dead_runs(instance)])
    unrecorded, incomplete = [], []
    for use_case in use_cases:
        registry = ModelRegistry(use_case.model_name)
        findings.orphan_versions += [
            (use_case.name, version, why)
            for version, why in orphan_versions(instance, registry, lake, use_case)
        ]
        findings.stale_training_runs += [
            (use_case.name, run_id, why) for run_id, why in stale_training_runs(instance, registry)
        ]
        unrecorded.append(unrecorded_rows(lake, use_case))
        found = incomplete_runs(lake, use_case)
        if found.height:
            incomplete.append(found.with_columns(pl.lit(use_case.name).alias("use_case")))
    findings.unrecorded = pl.concat(unrecorded) if unrecorded else None
    findings.incomplete = pl.concat(incomplete, how="diagonal") if incomplete else None
    return findings


def repair(instance: DagsterInstance, findings: Findings, use_cases: dict[str, UseCase]) -> None:
    """Mark dead runs failed, tag orphan versions, end stale training runs KILLED (unrecorded
    rows stay: never read)."""
    sweep_dead_runs(instance)
    for name, version, why in findings.orphan_versions:
        ModelRegistry(use_cases[name].model_name).tag_version(version, {ORPHAN_TAG: why})
    for name, run_id, _ in findings.stale_training_runs:
        ModelRegistry(use_cases[name].model_name).client.set_terminated(run_id, "KILLED")
