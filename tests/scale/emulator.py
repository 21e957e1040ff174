"""A private S3 emulator (moto's server, a subprocess on 127.0.0.1) for the fault tests: one that
checks credentials, or one that is restarted mid-run and keeps its objects (``durable``: moto
records every request and replays them after the restart, as a real store keeps its data)."""

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
from pathlib import Path

REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Emulator:
    def __init__(self, folder: Path, *, auth: bool = False, durable: bool = False) -> None:
        self.folder, self.auth, self.durable = folder, auth, durable
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.key, self.secret = "testing", "testing"
        self.recording = folder / "recording.jsonl"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def options(self, **overrides: str) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ALLOW_HTTP": "true",
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": self.key,
            "AWS_SECRET_ACCESS_KEY": self.secret,
            **overrides,
        }

    def start(self) -> Emulator:
        self.folder.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "AWS_EC2_METADATA_DISABLED": "true"}
        if self.durable:
            env |= {"MOTO_ENABLE_RECORDING": "true", "MOTO_RECORDER_FILEPATH": str(self.recording)}
        log = (self.folder / "moto.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                self._request("GET", "/moto-api/")
                break
            time.sleep(0.1)
        else:
            self.stop()
            raise RuntimeError(f"moto did not answer on port {self.port}")
        if self.durable:
            self._request("POST", "/moto-api/recorder/start-recording")
        if self.auth:
            self._create_user()
        return self

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.process = None

    def restart(self) -> None:
        """Stop, start on the same port, replay what it had stored (durable)."""
        kept = self.recording.read_bytes() if self.durable and self.recording.exists() else b""
        self.stop()
        self.start()
        if kept:
            self._request("POST", "/moto-api/recorder/stop-recording")
            self.recording.write_bytes(kept)
            self._request("POST", "/moto-api/recorder/replay-recording")
            self._request("POST", "/moto-api/recorder/start-recording")

    def create_bucket(self, name: str) -> str:
        if self.auth:
            self._boto("s3").create_bucket(Bucket=name)
        else:
            self._request("PUT", f"/{name}")
        return name

    def _create_user(self) -> None:
        iam = self._boto("iam")
        iam.create_user(UserName="scorehouse")
        iam.put_user_policy(
            UserName="scorehouse",
            PolicyName="s3",
            PolicyDocument='{"Version":"2012-10-17","Statement":'
            '[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}',
        )
        key = iam.create_access_key(UserName="scorehouse")["AccessKey"]
        self.key, self.secret = key["AccessKeyId"], key["SecretAccessKey"]
        self._request("POST", "/moto-api/reset-auth", body=b"0")  # from now on keys are checked

    def _boto(self, service: str):  # type: ignore[no-untyped-def]
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=self.key,
            aws_secret_access_key=self.secret,
        )

    def _request(self, method: str, path: str, body: bytes | None = None) -> int:
        request = urllib.request.Request(
            f"{self.endpoint}{path}",
            data=body,
            method=method,
            headers={"Content-Type": "application/octet-stream"},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)
