"""``scorehouse serve`` as a real server (subprocesses, 2 workers): ``kill -9`` loses no
acknowledged request and duplicates none; workers are never recycled; a promotion under
concurrent load fails no request and mixes no versions."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import polars as pl
import pytest

from models.lifecycle.registry import CHAMPION
from tests.orchestration.serving.conftest import ServedWorld

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """``scorehouse serve`` in its own process group (so ``kill -9`` reaches every worker)."""

    def __init__(self, served: ServedWorld, spool: Path, log: Path, *args: str) -> None:
        self.port = _free_port()
        env = {
            **os.environ,
            "SCOREHOUSE_HOME": str(served.home),
            "SCOREHOUSE_LAKEHOUSE_URI": served.world.lake.uri,
        }
        command = [str(BIN / "scorehouse"), "serve", "--port", str(self.port)]
        command += ["--workers", "2", "--poll", "0.5", "--spool-dir", str(spool), *args]
        self.log = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.wait_ready()

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict, dict]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            data = json.dumps(body).encode() if body is not None else None
            headers = {"Content-Type": "application/json"} if data else {}
            connection.request(method, path, data, headers)
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), json.loads(response.read())
        finally:
            connection.close()

    def wait_ready(self, timeout: float = 180) -> set[int]:
        """Until both workers answer /readyz (each new connection lands on either)."""
        deadline, ready = time.monotonic() + timeout, set()
        while len(ready) < 2:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"server not ready: {self.log.read_text()[-3000:]}")
            try:
                status, _, body = self.request("GET", "/readyz")
                if status == 200:
                    ready.add(body["pid"])
            except OSError:
                pass
            time.sleep(0.2)
        return ready

    def pids(self, tries: int = 60) -> set[int]:
        return {self.request("GET", "/healthz")[2]["pid"] for _ in range(tries)}

    def kill9(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=90)


def _metric(server: Server, name: str) -> float:
    """A metric's value summed over every process of the server (workers and supervisor)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.request("GET", "/metrics")
        text = connection.getresponse().read().decode()
    finally:
        connection.close()
    values = [float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " ")]
    assert values, f"{name} not in /metrics"
    return sum(values)


def _audit(served: ServedWorld) -> pl.DataFrame:
    table = served.world.use_case.tables.scoring.online_predictions
    if not served.world.lake.exists(table):
        return pl.DataFrame(schema=served.world.use_case.table_spec(table).polars_schema)
    return served.world.lake.read(table)


def _entities(served: ServedWorld) -> list[str]:
    return (
        served.world.lake.read(served.world.use_case.tables.scoring.predictions)["customer_id"]
        .unique()
        .sort()
        .to_list()
    )


def test_kill_9_loses_no_acknowledged_request_and_duplicates_none(
    world_env: ServedWorld, tmp_path: Path
) -> None:
    """Requests flow (a new connection each, so both workers take some) when every process of
    the server is killed; after a restart the table holds every acknowledged request once, and
    nothing else but, at most, the one request in flight at the kill."""
    spool = tmp_path / "spool"
    log = tmp_path / "serve.log"
    before = _audit(world_env).height
    ids = _entities(world_env)
    server = Server(world_env, spool, log, "--flush-interval", "0.5")
    sent: list[str] = []
    acknowledged: dict[str, int] = {}

    def traffic() -> None:
        for n in range(100_000):
            body: dict = {"entity_id": ids[n % len(ids)]}
            if n % 7 == 6:
                body["features"] = {"mrr": "x"}  # refused, and audited as such
            client_id = f"load-{n}"
            sent.append(client_id)
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            try:
                connection.request(
                    "POST",
                    "/v1/churn/score",
                    json.dumps(body).encode(),
                    {"Content-Type": "application/json", "X-Request-ID": client_id},
                )
                acknowledged[client_id] = connection.getresponse().status
            except OSError:
                return  # the server is gone
            finally:
                connection.close()

    thread = threading.Thread(target=traffic)
    thread.start()
    # Kill once the committer has committed some rows and more are acknowledged since: a count
    # of requests alone is not enough, as on a fast machine 150 requests beat the first flush.
    deadline = time.monotonic() + 120
    while len(acknowledged) < 150 or _audit(world_env).height == before:
        assert thread.is_alive() and time.monotonic() < deadline, "no audit row was committed"
        time.sleep(0.2)
    floor = len(acknowledged)
    while len(acknowledged) < floor + 20 and thread.is_alive():
        time.sleep(0.02)
    server.kill9()
    thread.join(timeout=60)
    committed = _audit(world_env).height - before
    assert 0 < committed < len(acknowledged)  # at the kill, some committed, some only spooled

    server = Server(world_env, spool, log, "--flush-interval", "0.5")  # recovers on start
    server.stop()
    assert not list(spool.rglob("*.jsonl"))  # recovered, then every worker committed all
    rows = _audit(world_env).filter(pl.col("client_request_id").str.starts_with("load-"))
    assert rows.select("request_id", "item", "role").is_duplicated().sum() == 0
    assert rows["client_request_id"].is_unique().all()  # one row per request (no shadow)
    stored = set(rows["client_request_id"])
    assert set(acknowledged) <= stored <= set(sent)
    assert len(stored - set(acknowledged)) <= 1
    statuses = dict(zip(rows["client_request_id"], rows["status"], strict=True))
    assert all(statuses[c] == status for c, status in acknowledged.items())
    assert set(acknowledged.values()) == {200, 422}


def test_workers_are_not_recycled_and_a_promotion_under_load_fails_nothing(
    world_env: ServedWorld, tmp_path: Path
) -> None:
    old, new = world_env.versions[:2]
    ids = _entities(world_env)
    server = Server(world_env, tmp_path / "spool", tmp_path / "serve.log")
    try:
        workers = server.pids()
        assert len(workers) == 2
        answers: list[tuple[int, str, str]] = []  # status, route, version ("?": header differs)
        stop = threading.Event()

        def client(seed: int) -> None:
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            n = seed
            while not stop.is_set():
                n += 1
                entity = ids[n % len(ids)]
                if n % 2:
                    connection.request("GET", f"/v1/churn/entities/{entity}/score")
                else:
                    body = json.dumps({"entity_id": entity}).encode()
                    connection.request(
                        "POST", "/v1/churn/score", body, {"Content-Type": "application/json"}
                    )
                response = connection.getresponse()
                payload = json.loads(response.read())
                route = "lookup" if n % 2 else "score"
                version = payload.get("model", {}).get("version", "")
                header = response.getheader("X-Model-Version") or ""
                answers.append((response.status, route, version if header == version else "?"))
            connection.close()

        threads = [threading.Thread(target=client, args=(k * 1000,)) for k in range(4)]
        for thread in threads:
            thread.start()
        while len(answers) < 800:
            time.sleep(0.05)
        world_env.world.registry.set_alias(CHAMPION, new)
        switched = time.monotonic()
        while len(answers) < 2400 or time.monotonic() - switched < 4:
            time.sleep(0.05)
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        assert server.pids() == workers  # the same two processes after all those requests
        scored_n = sum(route == "score" for _, route, _ in answers)
        deadline = time.monotonic() + 30  # the supervisor commits every 5 s
        while _metric(server, "scorehouse_audit_committed_rows_total") < scored_n:
            assert time.monotonic() < deadline, "the supervisor did not commit the spools"
            time.sleep(0.5)
        assert _metric(server, "scorehouse_audit_spooled_rows_total") == scored_n
        assert _metric(server, "scorehouse_audit_pending_rows") == 0
    finally:
        server.stop()
    assert Counter(status for status, _, _ in answers) == {200: len(answers)}
    scored = [version for _, route, version in answers if route == "score"]
    assert set(scored) == {old, new}  # each answer names one version, in body and header
    first_new = scored.index(new)
    assert scored[:first_new] == [old] * first_new and scored[-100:] == [new] * 100
