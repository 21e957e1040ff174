"""One promotion gate at a time per model, across processes and machines.

Two gates racing (a scheduled retrain and a sensor-launched one, on two workers) would both
compare against the old champion and both promote. ``promotion_gate`` serializes them: the
second gate waits, then compares against what the first decided (its challenger is then
already the champion: an ``unchanged`` decision, recorded, no move).

The lock lives where the registry lives: a PostgreSQL advisory lock in the MLflow database
(the scale profile; held by one session, released when it ends, even if the process dies), or
an exclusive file lock beside an embedded SQLite store.
"""

from __future__ import annotations

import fcntl
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from lakehouse.config import scorehouse_home


def _lock_id(name: str) -> int:
    """A stable signed 64-bit key for ``pg_advisory_lock``."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextmanager
def promotion_gate(tracking_uri: str, model_name: str) -> Iterator[None]:
    """Hold the model's promotion lock for the duration of the block."""
    name = f"scorehouse.promotion.{model_name}"
    if tracking_uri.startswith(("postgresql", "postgres")):
        with _advisory_lock(tracking_uri, _lock_id(name)):
            yield
        return
    folder = scorehouse_home() / "mlflow"
    if tracking_uri.startswith("sqlite:///"):
        folder = Path(tracking_uri.removeprefix("sqlite:///")).parent
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / f".{name}.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def _advisory_lock(url: str, key: int) -> Iterator[None]:
    import psycopg2

    parts = urlsplit(url)
    plain = urlunsplit(("postgresql", parts.netloc, parts.path, parts.query, ""))
    connection = psycopg2.connect(plain)
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", (key,))
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", (key,))
    finally:
        connection.close()
