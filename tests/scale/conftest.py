"""Fixtures of the scale-profile tests: the services ``make services`` started, and for each test
its own corner of them, so tests never see one another's state:

* a fresh prefix of the S3 bucket (``s3://<bucket>/t<id>/lakehouse``, MLflow artifacts beside it);
* fresh PostgreSQL databases for the Dagster instance, MLflow and the Feast registry;
* a Redis database of its own for the online store, emptied first.

The profile file comes from ``SCOREHOUSE_PROFILE_FILE`` (``make test-scale`` sets it after
``make services``). Without it the tests are skipped, unless ``SCOREHOUSE_SCALE_REQUIRED=1``
(the scale stage of ``make test``), where a missing service fails them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from lakehouse.config import project_root
from orchestration.profiles import (
    PROFILE,
    PROFILE_FILE,
    Profile,
    celery_worker_command,
    load_profile,
    read_profile_file,
)

ONLINE_DB = 3
"""The Redis database of the tests' online stores (0 is the services' default, 1-2 Celery's)."""


@pytest.fixture(scope="session")
def services() -> dict[str, str]:
    """The profile file's settings (the running services), or skip / fail without them."""
    path = os.environ.get(PROFILE_FILE) or str(project_root() / ".scorehouse" / "services.env")
    if not Path(path).exists():
        message = f"scale services not started ({path} missing): run `make services`"
        if os.environ.get("SCOREHOUSE_SCALE_REQUIRED") == "1":
            pytest.fail(message)
        pytest.skip(message)
    settings = read_profile_file(path)
    settings[PROFILE_FILE] = path
    load_profile({**settings, PROFILE: "scale"}).check_services()
    return settings


def _server(url: str) -> str:
    """The server URL of ``SCOREHOUSE_POSTGRES_URL`` for psycopg2 (no driver, no database)."""
    parts = urlsplit(url)
    return urlunsplit(("postgresql", parts.netloc, "/postgres", "", ""))


def _admin(url: str, statement: str) -> None:
    import psycopg2

    connection = psycopg2.connect(_server(url))
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(statement)
    finally:
        connection.close()


@pytest.fixture
def scale_env(
    services: dict[str, str], monkeypatch: pytest.MonkeyPatch, scorehouse_home: Path
) -> Iterator[Profile]:
    """This test's scale profile, its settings in the environment (undone afterwards)."""
    import redis

    tag = f"t{uuid.uuid4().hex[:10]}"
    server = services["SCOREHOUSE_POSTGRES_URL"]
    bucket = urlsplit(services["SCOREHOUSE_LAKEHOUSE_URI"]).netloc
    databases = {name: f"{tag}_{name}" for name in ("dagster", "mlflow", "feast")}
    for database in databases.values():
        _admin(server, f"CREATE DATABASE {database}")
    base = server.rstrip("/")
    online = f"{urlsplit(services['SCOREHOUSE_REDIS_URL'])._replace(path=f'/{ONLINE_DB}').geturl()}"
    redis.Redis.from_url(online).flushdb()
    monkeypatch.setenv(PROFILE, "scale")
    monkeypatch.setenv(PROFILE_FILE, services[PROFILE_FILE])
    for key, value in {
        "SCOREHOUSE_LAKEHOUSE_URI": f"s3://{bucket}/{tag}/lakehouse",
        "SCOREHOUSE_MLFLOW_ARTIFACTS": f"s3://{bucket}/{tag}/mlflow",
        "SCOREHOUSE_DAGSTER_POSTGRES_URL": f"{_driver(base)}/{databases['dagster']}",
        "MLFLOW_TRACKING_URI": f"{_driver(base)}/{databases['mlflow']}",
        "SCOREHOUSE_FEAST_REGISTRY": f"{_driver(base)}/{databases['feast']}",
        "SCOREHOUSE_FEAST_ONLINE_STORE": online,
    }.items():
        monkeypatch.setenv(key, value)
    profile = load_profile()
    for key, value in profile.environment().items():
        if key not in os.environ or key.startswith(("AWS_", "MLFLOW_S3")):
            monkeypatch.setenv(key, value)
    yield profile
    for database in databases.values():
        try:
            _admin(server, f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        except Exception as exc:  # a leftover database is only disk space in a temp folder
            print(f"could not drop {database}: {exc}")


def _driver(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(("postgresql+psycopg2", parts.netloc, "", "", ""))


@pytest.fixture
def celery_worker(scale_env: Profile, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A Celery worker with this test's environment (steps see its home, tables and stores);
    the broker's queues are emptied first, so no earlier run's task reaches it. Stopped by PID."""
    import redis

    for key in ("SCOREHOUSE_CELERY_BROKER", "SCOREHOUSE_CELERY_BACKEND"):
        redis.Redis.from_url(os.environ[key]).flushdb()
    log = tmp_path / "celery-worker.log"
    command = celery_worker_command(scale_env, sys.executable, name=f"scorehouse-{os.getpid()}")
    command[command.index("WARNING")] = "INFO"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            command, cwd=project_root(), env=dict(os.environ), stdout=out, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + 120
    while b" ready." not in log.read_bytes():
        if worker.poll() is not None or time.monotonic() > deadline:
            worker.kill()
            pytest.fail(f"the Celery worker did not start: {log.read_text()[-3000:]}")
        time.sleep(0.5)
    try:
        yield worker
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=30)
