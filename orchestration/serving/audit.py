"""Audited requests: every on-demand decision and every refused request in Delta, losing none.

Write-ahead: before a response is sent, the request's audit rows are written to this worker's
spool and fsynced (``Spool.append``: a JSON line per row, then an empty line that ends the
request). A background flusher
(``AuditWriter``) commits the rows spooled since its last commit to each use case's
``ml.<uc>_online_predictions`` through ``Lakehouse.append``, and deletes a segment only once
every row in it is committed. So a crash or ``kill -9`` loses no acknowledged request: its rows
are in a segment, in the table, or (when the process died between a commit and the delete)
both.

Idempotent by request id: rows that may have been committed already (a dead worker's segments,
or rows whose last commit attempt failed) are committed without those whose
``(request_id, item, role)`` the table already holds. A torn last request, a write the crash
interrupted, was never acknowledged and is skipped whole: whatever follows the last empty line.
Rows are parsed by polars' JSON reader (``frame_of``), which does not hold Python's interpreter
lock: the scoring thread keeps running while the flusher parses what it commits.

Segments are preallocated, zero-filled files (``segment_bytes``, 8 MiB by default) written in
place: an fsync then flushes data only, never the file's size or extents, so it does not wait on
the filesystem journal that other writers (Delta commits) keep busy. The written part of a
segment ends at its first NUL byte (JSON never contains one). The flusher prepares the next
segment ahead, so a request rarely waits for one to be zero-filled.

Layout: ``<spool>/<worker>/LOCK``, held with ``flock`` while the worker lives, and numbered
segments ``000000000001.jsonl``. Every worker, and ``scorehouse serve`` before it starts them,
adopts the folders of dead workers (whose LOCK it can take) and commits them the same way.
"""

from __future__ import annotations

import fcntl
import io
import json
import logging
import os
import shutil
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from lakehouse.catalog import TableSpec
from lakehouse.commit import CommitInfo
from lakehouse.storage import Lakehouse

logger = logging.getLogger(__name__)

LOCK = "LOCK"
SUFFIX = ".jsonl"
SEGMENT_BYTES = 8 << 20
USE_CASE = "_use_case"  # the spool row's use case (not a table column)
KEY = ("request_id", "item", "role")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_DAY = date(1970, 1, 1)


def _json_value(value: Any) -> Any:
    """Timestamps as UTC microseconds and dates as days since 1970: exact, and typed back by the
    table schema when committed."""
    if isinstance(value, datetime):
        delta = value.astimezone(UTC) - _EPOCH
        return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    if isinstance(value, date):
        return (value - _EPOCH_DAY).days
    raise TypeError(f"cannot spool a {type(value).__name__}")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SpoolLockedError(RuntimeError):
    """Another live process holds this spool folder."""


class Spool:
    """One worker's write-ahead log of audit rows (see the module docstring)."""

    def __init__(self, root: Path, worker: str, *, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.root = root
        self.dir = root / worker
        self.dir.mkdir(parents=True, exist_ok=False)
        self._lock = os.open(self.dir / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock)
            raise SpoolLockedError(f"spool {self.dir} is held by another process") from None
        _fsync_dir(root)
        self.segment_bytes = segment_bytes
        self._mutex = threading.Lock()
        self._sequence = 0
        self._fd = -1
        self._spare: Path | None = None
        self.pending = 0  # rows spooled and not yet committed
        self.done: dict[Path, int] = {}  # segment → bytes committed (kept by the flusher)
        self._open_next(0)

    @property
    def name(self) -> str:
        return self.dir.name

    def _open_next(self, need: int) -> None:
        """Start the next segment (the spare when it fits): its name durable before any row."""
        self._sequence += 1
        path = self.dir / f"{self._sequence:012d}{SUFFIX}"
        spare, self._spare = self._spare, None
        if spare is not None and need <= self.segment_bytes:
            os.rename(spare, path)
            size = self.segment_bytes
        else:
            if spare is not None:
                spare.unlink()
            size = max(self.segment_bytes, need)
            _zero_filled(path, size)
        _fsync_dir(self.dir)
        self._fd = os.open(path, os.O_WRONLY)
        self._path, self._offset, self._capacity = path, 0, size

    def append(self, rows: list[dict[str, Any]]) -> None:
        """Write one request's rows, a line each, and the empty line that ends the request, then
        fsync: on return they survive a crash. (A NaN is written as null: a table null.)"""
        option = orjson.OPT_PASSTHROUGH_DATETIME
        line = b"".join(orjson.dumps(r, default=_json_value, option=option) + b"\n" for r in rows)
        line += b"\n"
        with self._mutex:
            if self._offset + len(line) > self._capacity:
                os.close(self._fd)
                self._open_next(len(line))
            view, offset = memoryview(line), self._offset
            while view:
                written = os.pwrite(self._fd, view, offset)
                view, offset = view[written:], offset + written
            os.fdatasync(self._fd)  # data only: the file's size and blocks never change
            self._offset = offset
            self.pending += len(rows)

    def prepare_spare(self) -> None:
        """Zero-fill the next segment ahead of need (the flusher calls this)."""
        if self._spare is not None:
            return
        spare = self.dir / f".spare-{self._sequence + 1:012d}"
        _zero_filled(spare, self.segment_bytes)
        with self._mutex:
            if self._spare is None and self._fd >= 0:
                self._spare = spare
                return
        spare.unlink()

    def written(self) -> tuple[list[Path], Path, int]:
        """(full segments, the open segment, how many of its bytes are written), consistent."""
        with self._mutex:
            current, offset = self._path, self._offset
        full = [p for p in segments(self.dir) if p < current]
        return full, current, offset

    def committed(self, rows: int) -> None:
        with self._mutex:
            self.pending = max(0, self.pending - rows)

    def close(self) -> None:
        """Close the open segment and release the folder (removed when all is committed)."""
        with self._mutex:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
        if self.pending == 0:
            shutil.rmtree(self.dir, ignore_errors=True)
        os.close(self._lock)


def _zero_filled(path: Path, size: int) -> None:
    """A file of ``size`` zero bytes, written and fsynced (real blocks, not a sparse file)."""
    chunk = bytes(min(size, 1 << 20))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        left = size
        while left:
            left -= os.write(fd, chunk[: min(left, len(chunk))])
        os.fsync(fd)
    finally:
        os.close(fd)


def segments(folder: Path) -> list[Path]:
    return sorted(folder.glob(f"*{SUFFIX}"))


class Spooled:
    """The complete requests of a segment, or of a range of one: JSON rows, one a line."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self._use_cases: pl.Series | None = None

    @property
    def use_cases(self) -> pl.Series:
        """The use case of each row."""
        if self._use_cases is None:
            self._use_cases = _read(self.data, {USE_CASE: pl.String()})[USE_CASE]
        return self._use_cases

    def __len__(self) -> int:
        return len(self.use_cases)


def read_segment(path: Path, start: int = 0, end: int | None = None) -> Spooled:
    """The complete requests in ``[start, end)`` of a segment (default: all that was written, up
    to the first NUL); a torn last request is dropped."""
    with path.open("rb") as handle:
        handle.seek(start)
        data = handle.read() if end is None else handle.read(end - start)
    data = data.split(b"\0", 1)[0]
    if data.startswith(b"["):
        return Spooled(_from_arrays(data))
    last = data.rfind(b"\n\n")  # the end of the last complete request
    return Spooled(data[: last + 2] if last >= 0 else b"")


def _from_arrays(data: bytes) -> bytes:
    """Segments spooled by earlier versions hold one JSON array of rows per request line (and
    ``NaN`` tokens, which only Python's ``json`` reads): the same rows, one a line."""
    out = []
    for line in data.split(b"\n")[:-1]:  # the last piece is b"" or a torn, unacknowledged line
        if line:
            rows = json.loads(line)
            out.append(b"".join(orjson.dumps(r) + b"\n" for r in rows) + b"\n")
    return b"".join(out)


def frame_of(spooled: Spooled, spec: TableSpec, use_case: str | None = None) -> pl.DataFrame:
    """The spooled rows (of ``use_case``, or all) as a frame of the table's schema, missing
    columns null; timestamps (UTC microseconds) and dates (days) typed back."""
    schema = spec.polars_schema
    spooled_types = {USE_CASE: pl.String(), **{n: _spooled_type(t) for n, t in schema.items()}}
    frame = _read(spooled.data, spooled_types)
    if use_case is not None:
        frame = frame.filter(pl.col(USE_CASE) == use_case)
    return frame.select(_typed(name, dtype) for name, dtype in schema.items())


def _read(data: bytes, schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    if not data:
        return pl.DataFrame(schema=dict(schema))
    return pl.read_ndjson(io.BytesIO(data), schema=dict(schema))


def _spooled_type(dtype: pl.DataType) -> pl.DataType:
    if isinstance(dtype, pl.Datetime):
        return pl.Int64()
    return pl.Int32() if dtype == pl.Date else dtype


def _typed(name: str, dtype: pl.DataType) -> pl.Expr:
    column = pl.col(name)
    if isinstance(dtype, pl.Datetime):
        return column.cast(pl.Datetime("us")).dt.replace_time_zone("UTC").cast(dtype)
    return column.cast(pl.Date) if dtype == pl.Date else column


@dataclass
class FlushResult:
    committed: int = 0
    skipped: int = 0  # rows the table held already (idempotent re-commit)
    segments: int = 0


class AuditWriter:
    """Commits spooled audit rows to Delta (see the module docstring).

    ``tables`` maps a use case to its online-predictions table spec. ``on_commit(rows)`` is told
    about every commit (metrics).
    """

    def __init__(
        self,
        lake: Lakehouse,
        tables: Mapping[str, TableSpec],
        root: Path,
        *,
        spool: Spool | None = None,
        on_commit: Callable[[int], None] | None = None,
    ) -> None:
        self.lake = lake
        self.tables = dict(tables)
        self.root = root
        self.spool = spool
        self._on_commit = on_commit
        self._uncertain: set[tuple[Path, int]] = set()  # ranges whose commit may have landed
        self._mutex = threading.Lock()  # one flush at a time (flusher thread, shutdown)

    def flush(self) -> FlushResult:
        """Commit what this worker spooled since the last flush, then any dead worker's spool."""
        result = FlushResult()
        with self._mutex:
            if self.spool is not None:
                self._flush_own(self.spool, result)
            for folder in self._orphans():
                self._adopt(folder, result)
        return result

    def _flush_own(self, spool: Spool, result: FlushResult) -> None:
        full, current, end = spool.written()
        for path in full:  # the rest of a full segment, then the segment goes
            self._commit_range(spool, path, None, result)
            path.unlink()
            _fsync_dir(path.parent)
            spool.done.pop(path, None)
            result.segments += 1
        if end > spool.done.get(current, 0):
            self._commit_range(spool, current, end, result)
        spool.prepare_spare()

    def _commit_range(self, spool: Spool, path: Path, end: int | None, result: FlushResult) -> None:
        start = spool.done.get(path, 0)
        rows = read_segment(path, start, end)
        key = (path, start)
        if len(rows):
            self._commit_rows(rows, path, result, dedupe=key in self._uncertain, uncertain=key)
        if end is not None:
            spool.done[path] = end
        spool.committed(len(rows))

    def _orphans(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        own = self.spool.dir if self.spool is not None else None
        return sorted(p for p in self.root.iterdir() if p.is_dir() and p != own)

    def _adopt(self, folder: Path, result: FlushResult) -> None:
        """Commit a dead worker's segments (deduplicated), then remove its folder."""
        try:
            fd = os.open(folder / LOCK, os.O_RDWR)
        except FileNotFoundError:
            if not segments(folder):  # a worker that died before it spooled anything
                shutil.rmtree(folder, ignore_errors=True)
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return  # alive
            for path in segments(folder):
                rows = read_segment(path)
                if len(rows):
                    self._commit_rows(rows, path, result, dedupe=True, uncertain=(path, 0))
                result.segments += 1
            shutil.rmtree(folder, ignore_errors=True)
            logger.info("committed the audit spool of a stopped worker (%s)", folder.name)
        finally:
            os.close(fd)

    def _commit_rows(
        self,
        rows: Spooled,
        path: Path,
        result: FlushResult,
        *,
        dedupe: bool,
        uncertain: tuple[Path, int],
    ) -> None:
        counts = dict(rows.use_cases.value_counts().iter_rows())
        unknown = sorted(set(counts) - set(self.tables))
        if unknown:
            raise LookupError(
                f"spool segment {path} holds rows of use cases not served now {unknown}: it is "
                "kept until they are"
            )
        try:
            for use_case, count in counts.items():
                committed, skipped = self._commit(use_case, rows, count, path, dedupe)
                result.committed += committed
                result.skipped += skipped
        except Exception:
            self._uncertain.add(uncertain)  # it may have landed: the retry deduplicates
            raise
        self._uncertain.discard(uncertain)

    def _commit(
        self, use_case: str, rows: Spooled, count: int, path: Path, dedupe: bool
    ) -> tuple[int, int]:
        spec = self.tables[use_case]
        frame = frame_of(rows, spec, use_case)
        frame = frame.unique(subset=list(KEY), keep="first", maintain_order=True)
        if dedupe:
            frame = self._without_committed(spec, frame)
        skipped = count - frame.height
        if frame.height:
            commit = CommitInfo(extra={"spool_segment": f"{path.parent.name}/{path.name}"})
            self.lake.append(spec.name, frame, commit=commit)
            if self._on_commit is not None:
                self._on_commit(frame.height)
        return frame.height, skipped

    def _without_committed(self, spec: TableSpec, frame: pl.DataFrame) -> pl.DataFrame:
        if not self.lake.exists(spec.name):
            return frame
        days = frame["request_date"].unique().to_list()
        ids = frame["request_id"].unique().to_list()
        held = self.lake.read(
            spec.name,
            columns=list(KEY),
            where=pl.col("request_date").is_in(days) & pl.col("request_id").is_in(ids),
        )
        return frame.join(held, on=list(KEY), how="anti")


def ensure_tables(lake: Lakehouse, names: Iterable[str]) -> None:
    """Create the online-predictions tables before workers append to them (two workers creating
    one table at once would conflict)."""
    for name in names:
        try:
            lake.create_if_missing(name)
        except Exception:
            if not lake.exists(name):  # not the race with another process: a real failure
                raise
