"""Deployment profiles: where state lives and how runs execute, chosen by one setting.

``SCOREHOUSE_PROFILE`` selects the profile; the code paths are the same in both, only the
addresses and the executor differ:

* ``embedded`` (default): Delta tables, Dagster, MLflow and Feast under ``SCOREHOUSE_HOME``
  (SQLite, local folders), every run in one process.
* ``scale``: Delta tables on S3-compatible storage (``SCOREHOUSE_LAKEHOUSE_URI`` +
  ``SCOREHOUSE_STORAGE_OPTIONS``); the Dagster instance (runs, event log, schedules, a run queue
  with concurrency limits), MLflow tracking and registry, and the Feast registry on PostgreSQL
  (``SCOREHOUSE_POSTGRES_URL``, databases ``dagster``, ``mlflow``, ``feast``); MLflow artifacts on
  the object store; the Feast online store and the Celery broker on Redis
  (``SCOREHOUSE_REDIS_URL``); steps on Celery workers, scoring fanned out in entity buckets.

``SCOREHOUSE_PROFILE_FILE`` names a file of ``KEY=VALUE`` lines (``make services`` writes one
for the local services; a shell can source it) whose settings apply where the environment does
not set them. ``activate()`` puts the profile's derived settings into the environment, where
each layer reads its own (the lakehouse its URI, MLflow its tracking URI, the Feast config its
registry and online store), so nothing below ``orchestration`` knows about profiles.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from lakehouse import config

PROFILE = "SCOREHOUSE_PROFILE"
PROFILE_FILE = "SCOREHOUSE_PROFILE_FILE"
PROFILES = ("embedded", "scale")
EXECUTORS = ("in_process", "multiprocess", "celery")
USE_CASE_TAG = "scorehouse/use_case"
"""Runs of one use case carry this tag; the scale profile's run queue runs one at a time each."""

_DEFAULTS: dict[str, dict[str, str]] = {
    "embedded": {"SCOREHOUSE_EXECUTOR": "in_process", "SCOREHOUSE_SCORING_BUCKETS": "1"},
    "scale": {"SCOREHOUSE_EXECUTOR": "celery", "SCOREHOUSE_SCORING_BUCKETS": "8"},
}


class ProfileError(ValueError):
    """The profile's settings are missing or malformed; the message names the setting."""


class ServiceUnavailableError(RuntimeError):
    """A service of the profile cannot be reached or refuses us; nothing was written."""


@dataclass(frozen=True)
class Profile:
    """The settings in effect: the profile's defaults, the profile file, the environment."""

    name: str
    settings: Mapping[str, str] = field(default_factory=dict)
    file_settings: Mapping[str, str] = field(default_factory=dict)
    """What the profile file said (exported by ``activate``; the defaults are not)."""

    def get(self, key: str, default: str | None = None) -> str | None:
        value = self.settings.get(key)
        return value if value not in (None, "") else default

    def require(self, key: str, what: str) -> str:
        value = self.get(key)
        if value is None:
            raise ProfileError(
                f"profile {self.name!r} needs {key} ({what}); set it in the environment or in "
                f"the profile file ({PROFILE_FILE})"
            )
        return value

    # ---------------------------------------------------------------------------- execution
    @property
    def executor(self) -> str:
        executor = self.get("SCOREHOUSE_EXECUTOR", "in_process") or "in_process"
        if executor not in EXECUTORS:
            raise ProfileError(f"SCOREHOUSE_EXECUTOR={executor!r}: expected one of {EXECUTORS}")
        return executor

    @property
    def workers(self) -> int:
        """Steps run at once: multiprocess children, or Celery worker processes."""
        return _positive(self, "SCOREHOUSE_WORKERS", "2")

    @property
    def scoring_buckets(self) -> int:
        """Entity buckets a scoring run fans out into (a default; a run's config may change it)."""
        return _positive(self, "SCOREHOUSE_SCORING_BUCKETS", "1")

    @property
    def max_concurrent_runs(self) -> int:
        return _positive(self, "SCOREHOUSE_MAX_CONCURRENT_RUNS", "4")

    # ------------------------------------------------------------------------------ services
    @property
    def postgres_url(self) -> str | None:
        return self.get("SCOREHOUSE_POSTGRES_URL")

    def database_url(self, database: str, *, driver: str = "postgresql+psycopg2") -> str:
        """``SCOREHOUSE_POSTGRES_URL`` (a server) with the given database and SQLAlchemy driver
        (psycopg2: SQLAlchemy 2.1 reads a bare ``postgresql://`` as psycopg 3)."""
        url = self.require("SCOREHOUSE_POSTGRES_URL", "PostgreSQL server URL")
        parts = urlsplit(url)
        if parts.scheme not in ("postgresql", "postgres", "postgresql+psycopg2"):
            raise ProfileError(f"SCOREHOUSE_POSTGRES_URL: expected postgresql://…, got {url!r}")
        return urlunsplit((driver, parts.netloc, f"/{database}", parts.query, ""))

    @property
    def dagster_url(self) -> str:
        """The Dagster instance's database (``SCOREHOUSE_DAGSTER_POSTGRES_URL`` or ``dagster``)."""
        return self.get("SCOREHOUSE_DAGSTER_POSTGRES_URL") or self.database_url("dagster")

    @property
    def redis_url(self) -> str | None:
        return self.get("SCOREHOUSE_REDIS_URL")

    def redis_database(self, db: int) -> str:
        """``SCOREHOUSE_REDIS_URL`` with another logical database (broker, results)."""
        parts = urlsplit(self.require("SCOREHOUSE_REDIS_URL", "Redis URL"))
        return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, ""))

    def environment(self) -> dict[str, str]:
        """The variables each layer reads, as this profile sets them (``activate`` applies them):
        the profile file's settings and, for ``scale``, every address derived from them."""
        env = dict(self.file_settings)
        if self.name != "scale":
            return env
        env[PROFILE] = self.name
        lake = self.require("SCOREHOUSE_LAKEHOUSE_URI", "Delta root on the object store")
        if not config.is_remote(lake):
            raise ProfileError(
                f"profile 'scale' keeps its tables on an object store: SCOREHOUSE_LAKEHOUSE_URI "
                f"must be s3://bucket/prefix, got {lake!r}"
            )
        env["SCOREHOUSE_DAGSTER_POSTGRES_URL"] = self.dagster_url
        env["MLFLOW_TRACKING_URI"] = self.get("MLFLOW_TRACKING_URI") or self.database_url("mlflow")
        env["SCOREHOUSE_MLFLOW_ARTIFACTS"] = (
            self.get("SCOREHOUSE_MLFLOW_ARTIFACTS", f"{lake.rstrip('/')}/_mlflow") or ""
        )
        env["SCOREHOUSE_FEAST_REGISTRY"] = (
            self.get(
                "SCOREHOUSE_FEAST_REGISTRY",
                self.database_url("feast", driver="postgresql+psycopg2"),
            )
            or ""
        )
        env["SCOREHOUSE_FEAST_ONLINE_STORE"] = (
            self.get(
                "SCOREHOUSE_FEAST_ONLINE_STORE", self.require("SCOREHOUSE_REDIS_URL", "Redis URL")
            )
            or ""
        )
        env["SCOREHOUSE_CELERY_BROKER"] = (
            self.get("SCOREHOUSE_CELERY_BROKER", self.redis_database(1)) or ""
        )
        env["SCOREHOUSE_CELERY_BACKEND"] = (
            self.get("SCOREHOUSE_CELERY_BACKEND", self.redis_database(2)) or ""
        )
        env |= _object_store_env(storage_options(self))
        return env

    def storage_options(self) -> dict[str, str] | None:
        """``SCOREHOUSE_STORAGE_OPTIONS`` as a mapping (object-store endpoint, credentials)."""
        return storage_options(self)

    # ------------------------------------------------------------------------------- checks
    def check_services(self, timeout_s: float = 5.0) -> None:
        """Raise ``ServiceUnavailableError`` naming the service and its setting unless every
        service of the profile answers (and accepts our credentials). Nothing is written."""
        if self.name != "scale":
            return
        env = self.environment()
        for what, key in (
            ("the Dagster instance", "SCOREHOUSE_DAGSTER_POSTGRES_URL"),
            ("MLflow", "MLFLOW_TRACKING_URI"),
            ("the Feast registry", "SCOREHOUSE_FEAST_REGISTRY"),
        ):
            url = self.get(key) or env[key]
            if url.startswith("postgres"):
                check_postgres(url, timeout_s, what=what, setting=key)
        check_redis(self.require("SCOREHOUSE_REDIS_URL", "Redis URL"), timeout_s)
        online = self.get("SCOREHOUSE_FEAST_ONLINE_STORE")
        if online and online != self.redis_url:
            check_redis(online, timeout_s, setting="SCOREHOUSE_FEAST_ONLINE_STORE")
        check_object_store(
            self.require("SCOREHOUSE_LAKEHOUSE_URI", "Delta root"), storage_options(self), timeout_s
        )

    # ------------------------------------------------------------------------------ Dagster
    def dagster_yaml(self) -> str:
        """The Dagster instance settings: embedded SQLite, or PostgreSQL with a run queue."""
        if self.name != "scale":
            return "telemetry:\n  enabled: false\n"
        instance: dict[str, Any] = {
            "storage": {"postgres": {"postgres_url": self.dagster_url}},
            "run_coordinator": {
                "module": "dagster._core.run_coordinator",
                "class": "QueuedRunCoordinator",
                "config": {
                    "max_concurrent_runs": self.max_concurrent_runs,
                    # Runs of one use case write the same tables: one at a time per use case.
                    "tag_concurrency_limits": [
                        {
                            "key": USE_CASE_TAG,
                            "value": {"applyLimitPerUniqueValue": True},
                            "limit": 1,
                        }
                    ],
                },
            },
            "telemetry": {"enabled": False},
        }
        import yaml

        return str(yaml.safe_dump(instance, sort_keys=False))

    def run_config(self) -> dict[str, Any]:
        """The ``execution`` part of a run's config for this profile's executor."""
        if self.executor == "in_process":
            return {"execution": {"config": {"in_process": {}}}}
        return {}


def _positive(profile: Profile, key: str, default: str) -> int:
    raw = profile.get(key, default) or default
    try:
        value = int(raw)
    except ValueError:
        raise ProfileError(f"{key}={raw!r}: expected a positive integer") from None
    if value < 1:
        raise ProfileError(f"{key}={raw!r}: expected a positive integer")
    return value


def read_profile_file(path: str | Path) -> dict[str, str]:
    """``KEY=VALUE`` lines (``#`` comments, blank lines, optional ``export``), as a shell reads
    them unquoted. A malformed line raises ``ProfileError`` naming the file and line."""
    settings: dict[str, str] = {}
    file = Path(path)
    if not file.exists():
        raise ProfileError(f"{PROFILE_FILE}={path}: no such file (run `make services` first?)")
    for number, raw in enumerate(file.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        key, sep, value = line.partition("=")
        if not sep or not key.replace("_", "").isalnum():
            raise ProfileError(f"{path}:{number}: expected KEY=VALUE, got {raw!r}")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        settings[key.strip()] = value
    return settings


def load_profile(environ: Mapping[str, str] | None = None) -> Profile:
    """The profile in effect: ``SCOREHOUSE_PROFILE`` (environment or profile file)."""
    env = dict(os.environ if environ is None else environ)
    file_settings = read_profile_file(env[PROFILE_FILE]) if env.get(PROFILE_FILE) else {}
    name = env.get(PROFILE) or file_settings.get(PROFILE) or "embedded"
    if name not in PROFILES:
        raise ProfileError(f"{PROFILE}={name!r}: expected one of {PROFILES}")
    settings = {**_DEFAULTS[name], **file_settings, **env}
    return Profile(name, settings, file_settings)


def activate(environ: dict[str, str] | None = None) -> Profile:
    """Load the profile and put its settings into the environment (variables already set win:
    they are part of what the profile was loaded from). Idempotent."""
    target = os.environ if environ is None else environ
    profile = load_profile(target)
    for key, value in profile.environment().items():
        if not target.get(key):
            target[key] = value
    return profile


def storage_options(profile: Profile) -> dict[str, str] | None:
    raw = profile.get("SCOREHOUSE_STORAGE_OPTIONS")
    if not raw:
        return None
    try:
        options = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ProfileError(f"SCOREHOUSE_STORAGE_OPTIONS is not JSON ({exc})") from None
    if not isinstance(options, dict):
        raise ProfileError("SCOREHOUSE_STORAGE_OPTIONS must be a JSON object of strings")
    return {str(k): str(v) for k, v in options.items()}


def _object_store_env(options: Mapping[str, str] | None) -> dict[str, str]:
    """The object-store options as environment variables, for the readers that take no options:
    Feast's offline store (delta-rs reads ``AWS_*`` from the environment, and options given to a
    source would be stored in the registry) and MLflow's artifact store (boto3)."""
    if not options:
        return {}
    upper = {k.upper(): v for k, v in options.items()}
    env = {k: v for k, v in upper.items() if k.startswith("AWS_")}
    if "AWS_ENDPOINT_URL" in upper:
        env["MLFLOW_S3_ENDPOINT_URL"] = upper["AWS_ENDPOINT_URL"]
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        if key in upper:
            env[key] = upper[key]
    if "AWS_REGION" in upper:
        env["AWS_DEFAULT_REGION"] = upper["AWS_REGION"]
    return env


# ----------------------------------------------------------------------------- service checks
def _hostport(url: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default_port


def _redacted(url: str) -> str:
    """The URL without its password (error messages never carry credentials)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def check_postgres(
    url: str,
    timeout_s: float = 5.0,
    *,
    what: str = "the database",
    setting: str = "SCOREHOUSE_POSTGRES_URL",
) -> None:
    import psycopg2

    parts = urlsplit(url)
    plain = urlunsplit(("postgresql", parts.netloc, parts.path, parts.query, ""))
    try:
        psycopg2.connect(plain, connect_timeout=max(1, int(timeout_s))).close()
    except psycopg2.OperationalError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        where = (
            "SCOREHOUSE_POSTGRES_URL"
            if setting == "SCOREHOUSE_POSTGRES_URL"
            else (f"{setting}, from SCOREHOUSE_POSTGRES_URL")
        )
        raise ServiceUnavailableError(
            f"PostgreSQL at {_redacted(plain)} ({what}; {where}) is unavailable: {reason}; "
            "nothing was written"
        ) from None


def check_redis(url: str, timeout_s: float = 5.0, *, setting: str = "SCOREHOUSE_REDIS_URL") -> None:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
    try:
        client.ping()
    except (redis.ConnectionError, redis.TimeoutError, redis.AuthenticationError) as exc:
        raise ServiceUnavailableError(
            f"Redis at {_redacted(url)} ({setting}) is unavailable: {exc}; nothing was written"
        ) from None
    finally:
        client.close()


def check_object_store(uri: str, options: Mapping[str, str] | None, timeout_s: float = 5.0) -> None:
    """The bucket of ``uri`` answers a listing with our credentials (S3 and S3-compatible)."""
    parts = urlsplit(uri)
    if parts.scheme not in ("s3", "s3a"):
        return  # other stores are checked by their first read
    upper = {k.upper(): v for k, v in (options or {}).items()}
    endpoint = upper.get("AWS_ENDPOINT_URL")
    where = f"object store {endpoint or 's3'} bucket {parts.netloc}"
    if endpoint:
        host, port = _hostport(endpoint, 443 if endpoint.startswith("https") else 80)
        try:
            socket.create_connection((host, port), timeout=timeout_s).close()
        except OSError as exc:
            raise ServiceUnavailableError(
                f"{where} (SCOREHOUSE_LAKEHOUSE_URI, SCOREHOUSE_STORAGE_OPTIONS "
                f"AWS_ENDPOINT_URL) is unreachable: {exc}; nothing was written"
            ) from None
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=upper.get("AWS_REGION", "us-east-1"),
        aws_access_key_id=upper.get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=upper.get("AWS_SECRET_ACCESS_KEY"),
        aws_session_token=upper.get("AWS_SESSION_TOKEN"),
        config=Config(
            connect_timeout=timeout_s, read_timeout=timeout_s, retries={"max_attempts": 1}
        ),
    )
    try:
        client.list_objects_v2(Bucket=parts.netloc, MaxKeys=1)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403"):
            raise ServiceUnavailableError(
                f"{where} refused our credentials ({code}): check AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY in SCOREHOUSE_STORAGE_OPTIONS; nothing was written"
            ) from None
        raise ServiceUnavailableError(
            f"{where} (SCOREHOUSE_LAKEHOUSE_URI) answered {code}: {exc}; nothing was written"
        ) from None
    except BotoCoreError as exc:
        raise ServiceUnavailableError(
            f"{where} (SCOREHOUSE_LAKEHOUSE_URI) is unavailable: {exc}; nothing was written"
        ) from None


# ------------------------------------------------------------------------------- executors
def executor_definition(profile: Profile) -> Any:
    """The code location's executor: Dagster's default (runs pass ``in_process``), the
    multiprocess executor (a warm fork server: steps do not re-import the libraries), or Celery
    on Redis (steps on ``celery_worker_command`` workers, here or on other machines)."""
    if profile.executor == "in_process":
        return None
    if profile.executor == "multiprocess":
        from dagster import multiprocess_executor

        return multiprocess_executor.configured(
            {
                "max_concurrent": profile.workers,
                "start_method": {"forkserver": {"preload_modules": ["orchestration.definitions"]}},
            },
            name="scorehouse_multiprocess",
        )
    from dagster_celery import celery_executor

    return celery_executor.configured(
        {
            "broker": {"env": "SCOREHOUSE_CELERY_BROKER"},
            "backend": {"env": "SCOREHOUSE_CELERY_BACKEND"},
        },
        name="scorehouse_celery",
    )


def celery_worker_command(profile: Profile, python: str, *, name: str = "scorehouse") -> list[str]:
    """The command that starts a Celery worker for this profile's steps (the environment must
    carry the profile, as it does after ``activate``)."""
    return [
        python,
        "-m",
        "celery",
        "-A",
        "orchestration.celery_app",
        "worker",
        "--queues",
        "dagster",
        "--concurrency",
        str(profile.workers),
        "--prefetch-multiplier",
        "1",
        "--pool",
        "prefork",
        "--without-gossip",
        "--without-mingle",
        "--hostname",
        f"{name}@%h",
        "--loglevel",
        "WARNING",
    ]
