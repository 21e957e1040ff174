"""A local S3 emulator for object-store tests and benchmarks: moto's server as a subprocess.

``S3Emulator`` starts ``python -m moto.server`` on 127.0.0.1 on a free port, waits until it
answers, and stops it by its PID. Nothing assumes an emulator is already running. Options:

* ``auth=True`` makes the emulator check credentials (IAM, SigV4): it creates a
  user with full S3 rights, whose keys ``storage_options`` then uses; any other key is refused.
* ``durable=True`` records every request to a file and replays it when the server starts
  again, so a restarted emulator comes back with its buckets and objects, as a real object store
  would. The replay happens on a private port before the public one opens: a client retrying
  during a restart finds the store down, never empty or half restored.

delta-rs commits on S3 with conditional puts (``If-None-Match: *``), which moto implements, so
no locking provider and no ``AWS_S3_ALLOW_UNSAFE_RENAME`` is needed (and neither is set).

``s3_emulator`` is a session fixture (exported by ``tests/conftest.py``); ``S3Emulator`` itself
serves tests that need their own emulator (credentials, restarts) and the benchmark.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REGION = "us-east-1"
DUMMY_KEY, DUMMY_SECRET = "testing", "testing"
_START_TIMEOUT_S = 30.0


class S3Emulator:
    """One moto server process; ``start``/``stop``/``restart``, buckets and storage options."""

    def __init__(self, workdir: Path, *, auth: bool = False, durable: bool = False) -> None:
        if auth and durable:
            raise ValueError("an emulator is either checking credentials or durable, not both")
        self.workdir = workdir
        self.auth, self.durable = auth, durable
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.access_key, self.secret_key = DUMMY_KEY, DUMMY_SECRET
        self._recording = workdir / "moto-recording.jsonl"
        self._log = workdir / "moto.log"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def start(self) -> S3Emulator:
        """Start the server (on the same port after a stop) and wait until it answers."""
        env = {**os.environ, "AWS_EC2_METADATA_DISABLED": "true"}
        if self.durable:
            env["MOTO_ENABLE_RECORDING"] = "true"
            env["MOTO_RECORDER_FILEPATH"] = str(self._recording)
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.durable:
            command = ["-c", f"from tests.s3 import serve_durable; serve_durable({self.port})"]
        else:
            command = ["-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]
        with self._log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, *command],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=Path(__file__).resolve().parents[1],
            )
        try:
            self._wait_until_up()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the server process by its PID (SIGTERM, then SIGKILL after 5 s)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        self.process = None

    def restart(self) -> None:
        """Stop and start again on the same port; a durable emulator gets its state back."""
        self.stop()
        self.start()

    def __enter__(self) -> S3Emulator:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def reset(self) -> None:
        """Drop every bucket and object (frees the emulator's memory between benchmark runs)."""
        self._request("POST", "/moto-api/reset")

    def create_bucket(self, name: str | None = None) -> str:
        """Create a bucket (a fresh random name by default) and return its name."""
        bucket = name or f"scorehouse-{uuid.uuid4().hex[:12]}"
        if self.auth:
            self._boto("s3").create_bucket(Bucket=bucket)
        else:
            self._request("PUT", f"/{bucket}")
        return bucket

    def storage_options(self, **overrides: str) -> dict[str, str]:
        """delta-rs / polars storage options for this emulator (as SCOREHOUSE_STORAGE_OPTIONS)."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ALLOW_HTTP": "true",
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            **overrides,
        }

    # ------------------------------------------------------------------------------ internals
    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"moto server exited with {self.process.returncode} on port {self.port}: "
                    + self._log.read_text()[-2000:]
                )
            with contextlib.suppress(OSError):
                self._request("GET", "/moto-api/reset-auth", method_ok=(200, 400, 404, 405))
                break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"moto server did not answer on port {self.port} within 30 s")
        if self.auth:
            self._create_user()

    def _create_user(self) -> None:
        """A user allowed everything on S3; from then on every request must carry its keys."""
        iam = self._boto("iam")
        iam.create_user(UserName="scorehouse")
        iam.put_user_policy(
            UserName="scorehouse",
            PolicyName="s3",
            PolicyDocument='{"Version":"2012-10-17","Statement":'
            '[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}',
        )
        key = iam.create_access_key(UserName="scorehouse")["AccessKey"]
        self.access_key, self.secret_key = key["AccessKeyId"], key["SecretAccessKey"]
        self._request("POST", "/moto-api/reset-auth", body=b"0")

    def _boto(self, service: str):  # type: ignore[no-untyped-def]
        import boto3  # moto's own dependency: only the auth emulator needs it

        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
        )

    def _request(
        self, method: str, path: str, method_ok: tuple[int, ...] = (200,), body: bytes | None = None
    ) -> None:
        request = urllib.request.Request(
            f"{self.endpoint}{path}",
            data=body,
            method=method,
            headers={"Content-Type": "application/octet-stream"},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        if status not in method_ok:
            raise RuntimeError(f"moto server: {method} {path} answered {status}")


def serve_durable(port: int) -> None:
    """The process of a durable emulator: replay the recorded requests (``MOTO_RECORDER_FILEPATH``)
    into the in-process backends through a private port, then serve them on ``port``."""
    import threading

    from moto.moto_api import recorder
    from moto.server import ThreadedMotoServer

    if Path(os.environ["MOTO_RECORDER_FILEPATH"]).exists():
        private = ThreadedMotoServer("127.0.0.1", _free_port(), verbose=False)
        private.start()
        host, private_port = private.get_host_and_port()
        recorder.replay_recording(target_host=f"http://{host}:{private_port}")
        private.stop()
    ThreadedMotoServer("127.0.0.1", port, verbose=False).start()
    threading.Event().wait()  # until SIGTERM/SIGKILL by PID (``S3Emulator.stop``)


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (nothing listens there until someone binds it)."""
    return _free_port()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def s3_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Emulator]:
    """One S3 emulator for the whole session (no auth, not durable); stopped at the end."""
    with S3Emulator(tmp_path_factory.mktemp("s3-emulator")) as emulator:
        yield emulator
