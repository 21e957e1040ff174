"""``scorehouse serve``: a supervisor process and its uvicorn workers on one socket.

The supervisor is the audit spool's committer (``audit.AuditCommitter``): before any worker
starts it creates the audit tables and commits what stopped workers left in the spool; then,
every ``flush_interval_s``, it commits what the workers spooled, on a thread of the lowest CPU
priority, so that Delta commits hold no worker's interpreter lock and yield the CPU to the
workers; after the workers have stopped it commits the rest. It runs uvicorn's multi-process
supervisor: each worker is a fresh process (its own models, spool and threads) and a worker
that dies is replaced. Workers are never recycled after a number of requests (uvicorn's
``limit_max_requests`` stays unset), so no request waits for a replacement process to load its
models.

Workers run their numeric libraries single-threaded (numba, OpenMP, polars): a request is one
row or a few hundred, and two workers on two cores must not fight over thread pools.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile

from orchestration.serving.audit import CommitLoop
from orchestration.serving.metrics import share_metrics
from orchestration.serving.settings import SETTINGS_ENV, ServiceSettings

logger = logging.getLogger(__name__)
APP = "orchestration.serving.app:create_app"
SINGLE_THREADED = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "POLARS_MAX_THREADS")
COMMITTER_NICE = 19  # the committer yields the CPU to every worker


def start_committer(settings: ServiceSettings) -> CommitLoop:
    """The supervisor's committer, started: tables created and stopped workers' spools
    committed (``.first``) before it returns."""
    from models.usecase import load_use_cases
    from orchestration.serving.audit import AuditCommitter, ensure_tables
    from orchestration.serving.metrics import Metrics, record_flush

    use_cases = load_use_cases()
    lake = use_cases.lakehouse()
    tables = {
        name: uc.table_spec(uc.tables.scoring.online_predictions) for name, uc in use_cases.items()
    }
    metrics = Metrics()  # with the workers' (share_metrics came first)
    committer = AuditCommitter(
        lake, tables, settings.spool_root, on_commit=metrics.audit_committed.inc
    )
    loop = CommitLoop(
        committer,
        settings.flush_interval_s,
        nice=COMMITTER_NICE,  # its Delta and polars thread pools start on it, niced too
        setup=lambda: ensure_tables(lake, [spec.name for spec in tables.values()]),
        on_flush=lambda c: record_flush(metrics, c),
        on_error=lambda _: metrics.audit_flush_errors.inc(),
    ).start()
    loop.started.wait()
    if loop.error is not None:
        raise loop.error
    return loop


def serve(settings: ServiceSettings) -> int:
    """Run the service until SIGINT/SIGTERM (the workers then finish their requests, and the
    supervisor commits what they spooled)."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    metrics_dir = tempfile.mkdtemp(prefix="scorehouse-metrics-")
    os.environ[SETTINGS_ENV] = settings.to_json()
    share_metrics(metrics_dir)
    for name in SINGLE_THREADED:
        os.environ.setdefault(name, "1")
    committer = start_committer(settings)
    if committer.first is not None and committer.first.committed:
        print(
            f"committed {committer.first.committed} audit rows left by stopped workers", flush=True
        )
    elif committer.first is not None and committer.first.busy:
        print("another process commits this audit spool: this one waits its turn", flush=True)
    config = uvicorn.Config(
        APP,
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        limit_max_requests=None,  # never recycle a worker
        timeout_keep_alive=30,
        timeout_graceful_shutdown=30,
        timeout_worker_healthcheck=30,  # a worker loading a model may answer pings late
        access_log=False,
        log_level="warning",
        server_header=False,
    )
    if not settings.loopback:
        print(
            f"warning: listening on {settings.host}: the service has no authentication; put it "
            "behind a gateway that has",
            file=sys.stderr,
        )
    socket = config.bind_socket()
    port = socket.getsockname()[1]
    print(
        f"Scorehouse scoring service on http://{settings.host}:{port} "
        f"({settings.workers} worker{'s' if settings.workers > 1 else ''}; GET /readyz)",
        flush=True,
    )
    try:
        Multiprocess(config, sockets=[socket]).run()
    finally:
        socket.close()
        committer.stop()  # the workers are gone: commit all they spooled
        shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0
