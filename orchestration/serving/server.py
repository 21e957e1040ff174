"""``scorehouse serve``: a supervisor process and its uvicorn workers on one socket.

Before any worker starts, the supervisor creates the audit tables and commits what crashed
workers left in the spool. It then runs uvicorn's multi-process supervisor: each worker is a
fresh process (its own models, spool and threads) and a worker that dies is replaced. Workers
are never recycled after a number of requests (uvicorn's ``limit_max_requests`` stays unset),
so no request waits for a replacement process to load its models.

Workers run their numeric libraries single-threaded (numba, OpenMP, polars): a request is one
row or a few hundred, and two workers on two cores must not fight over thread pools.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile

from orchestration.serving.metrics import MULTIPROC_ENV
from orchestration.serving.settings import SETTINGS_ENV, ServiceSettings

logger = logging.getLogger(__name__)
APP = "orchestration.serving.app:create_app"
SINGLE_THREADED = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "POLARS_MAX_THREADS")


def recover(settings: ServiceSettings) -> int:
    """Create the audit tables and commit every dead worker's spool; returns rows committed."""
    from models.usecase import load_use_cases
    from orchestration.serving.audit import AuditWriter, ensure_tables

    use_cases = load_use_cases()
    lake = use_cases.lakehouse()
    tables = {
        name: uc.table_spec(uc.tables.scoring.online_predictions) for name, uc in use_cases.items()
    }
    ensure_tables(lake, [spec.name for spec in tables.values()])
    root = settings.spool_root
    root.mkdir(parents=True, exist_ok=True)
    result = AuditWriter(lake, tables, root).flush()
    return result.committed


def serve(settings: ServiceSettings) -> int:
    """Run the service until SIGINT/SIGTERM (the workers then finish and commit their spools)."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    committed = recover(settings)
    if committed:
        print(f"committed {committed} audit rows left by stopped workers", flush=True)
    metrics_dir = tempfile.mkdtemp(prefix="scorehouse-metrics-")
    os.environ[SETTINGS_ENV] = settings.to_json()
    os.environ[MULTIPROC_ENV] = metrics_dir
    for name in SINGLE_THREADED:
        os.environ.setdefault(name, "1")
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
        shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0
