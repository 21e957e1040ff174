"""Audited requests: every on-demand decision and every refused request in Delta, losing none.

Write-ahead: before a response is sent, the request's audit rows are written to its worker's
spool and fsynced (``Spool.append``: a JSON line per row, then an empty line that ends the
request). Workers only ever append. One committer per spool root (``AuditCommitter``, holding
the ``flock`` on ``<spool>/COMMITTER``) commits what every worker spooled since its last commit
to each use case's ``ml.<uc>_online_predictions`` through ``Lakehouse.append`` (one commit per
use case for all workers together) and deletes a segment only once every row in it is
committed. ``scorehouse serve`` runs the committer in its supervisor process, on a thread of the
lowest CPU priority, so that parsing and committing never take a worker's CPU time or
interpreter lock; an app started any other way commits from whichever of its processes takes the
lock first. So a crash or ``kill -9`` loses no acknowledged request: its rows are in a segment,
in the table, or (when the committer died between a commit and the delete) both.

Which bytes are committed: a worker writes only its highest-numbered segment; the lower ones are
full. The committer remembers how far it committed each segment. Of the open segment it takes
the complete requests written so far (a write in progress is never complete: a request ends with
its empty line, and the segment's written part ends at its first NUL). A worker whose folder
``LOCK`` it can take is dead: its segments are taken to their end and the folder removed.

Idempotent by request id: rows that may have been committed already (every segment the
committer finds when it takes the lock, since an earlier committer may have committed part of
it, and rows whose last commit attempt failed) are committed without those whose
``(request_id, item, role)`` the table already holds. A torn last request, a write the crash
interrupted, was never acknowledged and is skipped whole: whatever follows the last empty line.
Rows are parsed by polars' JSON reader (``frame_of``), which does not hold Python's interpreter
lock. One flush reads at most ``max_bytes`` of spool (then goes on with the rest), so a backlog
left while Delta could not be written is committed in bounded memory.

Segments are preallocated, zero-filled files (``segment_bytes``, 8 MiB by default) written in
place: an fsync then flushes data only, never the file's size or extents, so it does not wait on
the filesystem journal that other writers (Delta commits) keep busy. JSON never contains a NUL,
so the zeros mark where the written part ends. A worker prepares its next segment ahead
(``prepare_spare``), so a request rarely waits for one to be zero-filled; it does so a chunk at
a time, with pauses, so that the requests' own fsyncs are not queued behind megabytes of zeros.

Layout: ``<spool>/COMMITTER`` (the committer's lock), ``<spool>/<worker>/LOCK`` held with
``flock`` while the worker lives, and numbered segments ``000000000001.jsonl``. A worker's folder
is made under a hidden name with its ``LOCK`` taken, then renamed into place, so the committer
never sees a live worker's folder without its lock.
"""

from __future__ import annotations

import fcntl
import io
import json
import logging
import os
import shutil
import threading
import time
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
ZERO_CHUNK = 256 << 10  # a spare segment is zero-filled and synced this much at a time,
SPARE_PAUSE_S = 0.001  # with this pause between chunks (see _zero_filled)
READ_BYTES = 64 << 20  # the most spool one flush reads
COMMITTER = "COMMITTER"
STAGING = ".staging-"  # a worker folder being made
STALE_STAGING_S = 600.0
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


class Spool:
    """One worker's write-ahead log of audit rows (see the module docstring)."""

    def __init__(self, root: Path, worker: str, *, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.root = root
        self.dir = root / worker
        if self.dir.exists():
            raise FileExistsError(f"spool folder {self.dir} exists: one worker per folder")
        staging = root / f"{STAGING}{worker}"
        staging.mkdir(parents=True)
        self._lock = os.open(staging / LOCK, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a new file: nobody else has it
        os.rename(staging, self.dir)
        _fsync_dir(root)
        self.segment_bytes = segment_bytes
        self._mutex = threading.Lock()
        self._sequence = 0
        self._fd = -1
        self._spare: Path | None = None
        self.spare_needed = threading.Event()  # set when the spare was used (or never made)
        self._open_next(0)

    @property
    def name(self) -> str:
        return self.dir.name

    def _open_next(self, need: int) -> None:
        """Start the next segment (the spare when it fits): its name durable before any row."""
        self._sequence += 1
        path = self.dir / f"{self._sequence:012d}{SUFFIX}"
        spare, self._spare = self._spare, None
        self.spare_needed.set()
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
            if self._fd < 0:
                raise RuntimeError(f"spool {self.dir} is closed")
            if self._offset + len(line) > self._capacity:
                os.close(self._fd)
                self._open_next(len(line))
            view, offset = memoryview(line), self._offset
            while view:
                written = os.pwrite(self._fd, view, offset)
                view, offset = view[written:], offset + written
            os.fdatasync(self._fd)  # data only: the file's size and blocks never change
            self._offset = offset

    def prepare_spare(self) -> None:
        """Zero-fill the next segment ahead of need (a worker thread calls this when
        ``spare_needed`` is set)."""
        self.spare_needed.clear()
        if self._spare is not None:
            return
        spare = self.dir / f".spare-{self._sequence + 1:012d}"
        _zero_filled(spare, self.segment_bytes, paced=True)
        with self._mutex:
            if self._spare is None and self._fd >= 0:
                self._spare = spare
                return
        spare.unlink()

    def close(self) -> None:
        """Close the open segment and release the folder: the committer then commits what is
        left in it and removes it."""
        with self._mutex:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
            if self._spare is not None:
                self._spare.unlink(missing_ok=True)
                self._spare = None
        os.close(self._lock)


def _zero_filled(path: Path, size: int, *, paced: bool = False) -> None:
    """A file of ``size`` zero bytes, written and fsynced (real blocks, not a sparse file).

    ``paced`` (a spare made ahead of need): written and synced ``ZERO_CHUNK`` at a time, with
    ``SPARE_PAUSE_S`` between chunks, so that a request fsyncing its segment meanwhile waits
    behind one chunk at most (8 MiB written, then synced, held such fsyncs up 8 ms). Unpaced (a
    request is waiting for this segment): one write, one sync."""
    step = ZERO_CHUNK if paced else 1 << 20
    chunk = bytes(min(size, step))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        left = size
        while left:
            left -= os.write(fd, chunk[: min(left, len(chunk))])
            if paced:
                os.fdatasync(fd)
                if left:
                    time.sleep(SPARE_PAUSE_S)
        os.fsync(fd)
    finally:
        os.close(fd)


def segments(folder: Path) -> list[Path]:
    return sorted(folder.glob(f"*{SUFFIX}"))


class Spooled:
    """Complete requests read from the spool: JSON rows, one a line."""

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


@dataclass
class Chunk:
    """The complete requests of a segment from ``start`` on: ``data``, ending at ``end``;
    ``exhausted`` when nothing was written after them but, perhaps, a torn request."""

    path: Path
    start: int
    end: int
    data: bytes
    exhausted: bool


def read_chunk(path: Path, start: int = 0, limit: int | None = None) -> Chunk:
    """The complete requests written in a segment from ``start`` (at most about ``limit``
    bytes of them; always at least one when there is one)."""
    with path.open("rb") as handle:
        handle.seek(start)
        raw = handle.read() if limit is None else handle.read(limit)
        written = raw.split(b"\0", 1)[0]
        if limit is not None and len(written) == len(raw) == limit and b"\n\n" not in written:
            handle.seek(start)  # one request longer than the limit: read it whole
            raw = handle.read()
            written = raw.split(b"\0", 1)[0]
    exhausted = len(written) < len(raw) or limit is None or len(raw) < limit
    if start == 0 and written.startswith(b"["):
        if not exhausted:  # a segment of the earlier format is read whole
            return read_chunk(path)
        return Chunk(path, 0, len(written), _from_arrays(written), True)
    last = written.rfind(b"\n\n")  # the end of the last complete request
    data = written[: last + 2] if last >= 0 else b""
    return Chunk(path, start, start + len(data), data, exhausted)


def read_segment(path: Path) -> Spooled:
    """Every complete request written in a segment (a torn last one dropped)."""
    return Spooled(read_chunk(path).data)


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
    segments: int = 0  # segments committed to their end and removed
    uncommitted: int = 0  # rows read whose commit failed (they stay spooled)
    busy: bool = False  # another process is this spool's committer


class AuditCommitter:
    """Commits every worker's spooled audit rows to Delta (see the module docstring).

    ``tables`` maps a use case to its online-predictions table spec. The first ``flush`` takes
    the spool root's committer lock (when another process holds it, flushes do nothing and say
    ``busy``); ``close`` gives it back. ``on_commit(rows)`` is told about every commit;
    ``backlog`` is how many rows the last flush found and left in the spool.
    """

    def __init__(
        self,
        lake: Lakehouse,
        tables: Mapping[str, TableSpec],
        root: Path,
        *,
        on_commit: Callable[[int], None] | None = None,
        max_bytes: int = READ_BYTES,
    ) -> None:
        self.lake = lake
        self.tables = dict(tables)
        self.root = root
        self.max_bytes = max_bytes
        self._on_commit = on_commit
        self._lock: int | None = None
        self._progress: dict[Path, int] = {}  # segment → bytes committed
        self._uncertain: set[Path] = set()  # segments whose next bytes may be committed already
        self._known: set[Path] = set()  # worker folders read since the lock was taken
        self._blocked: dict[Path, int] = {}  # segments with rows of use cases not served: rows
        self._mutex = threading.Lock()  # one flush at a time
        self.backlog = 0

    @property
    def holds_lock(self) -> bool:
        return self._lock is not None

    def flush(self) -> FlushResult:
        """Commit what every worker spooled since the last flush (and all a dead worker left)."""
        result = FlushResult()
        with self._mutex:
            if not self._take_lock():
                result.busy = True
                return result
            try:
                while self._flush_some(result):
                    pass
            finally:
                self.backlog = result.uncommitted + sum(self._blocked.values())
        return result

    def close(self) -> None:
        """Give the committer lock back (another process may then commit this spool)."""
        with self._mutex:
            if self._lock is not None:
                os.close(self._lock)
                self._lock = None

    def _take_lock(self) -> bool:
        if self._lock is not None:
            return True
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / COMMITTER, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._lock = fd
        # Whatever an earlier committer did is unknown: every segment found now is uncertain.
        self._progress.clear()
        self._uncertain.clear()
        self._known.clear()
        return True

    def _flush_some(self, result: FlushResult) -> bool:
        """One read of at most ``max_bytes`` and its commits; True when more is waiting."""
        budget, more = self.max_bytes, False
        chunks: list[tuple[Chunk, bool]] = []  # (chunk, the segment is full: nothing comes)
        dead: dict[Path, int] = {}  # folder → its LOCK, held while its segments are read
        try:
            for folder in self._folders():
                held = _take_folder(folder)
                if held is None:
                    continue
                if held >= 0:
                    dead[folder] = held
                known = folder in self._known
                self._known.add(folder)
                paths = segments(folder)
                for i, path in enumerate(paths):
                    if path in self._blocked:
                        continue  # until a committer that serves its use cases takes it
                    if path not in self._progress:
                        self._progress[path] = 0
                        if not known:
                            self._uncertain.add(path)
                    chunk = read_chunk(path, self._progress[path], budget)
                    chunks.append((chunk, held >= 0 or i < len(paths) - 1))
                    budget -= len(chunk.data)
                    if budget <= 0 or not chunk.exhausted:  # the rest waits for the next read
                        more = True
                        break
                if more:
                    break
            self._commit_chunks([c for c, _ in chunks], result)
            more = more and any(c.path not in self._blocked for c, _ in chunks)
            for chunk, full in chunks:
                if chunk.path in self._blocked:
                    continue
                self._progress[chunk.path] = chunk.end
                if full and chunk.exhausted:
                    self._remove(chunk.path)
                    result.segments += 1
            for folder in dead:
                if not segments(folder):
                    shutil.rmtree(folder, ignore_errors=True)
                    self._known.discard(folder)
                    logger.info("committed the audit spool of a stopped worker (%s)", folder.name)
        finally:
            for fd in dead.values():
                os.close(fd)
        return more

    def _folders(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        folders = []
        for path in sorted(self.root.iterdir()):
            if not path.is_dir():
                continue
            if path.name.startswith(STAGING):
                _remove_stale_staging(path)
            else:
                folders.append(path)
        return folders

    def _remove(self, path: Path) -> None:
        path.unlink()
        _fsync_dir(path.parent)
        self._progress.pop(path, None)
        self._uncertain.discard(path)

    def _commit_chunks(self, chunks: list[Chunk], result: FlushResult) -> None:
        """Commit the chunks' rows, one commit per use case; chunks holding rows of use cases
        not served now are left in the spool (``_blocked``) and the others go on."""
        ready: list[Chunk] = []
        counts: dict[str, int] = {}  # use case → rows, over the ready chunks
        for chunk in chunks:
            if not chunk.data:
                continue
            rows = Spooled(chunk.data)
            found = dict(rows.use_cases.value_counts().iter_rows())
            unknown = sorted(set(found) - set(self.tables))
            if unknown:
                logger.error(
                    "spool segment %s holds rows of use cases not served now %s: it is kept "
                    "until they are",
                    chunk.path,
                    unknown,
                )
                self._blocked[chunk.path] = len(rows)
                continue
            ready.append(chunk)
            for use_case, count in found.items():
                counts[use_case] = counts.get(use_case, 0) + count
        if not ready:
            return
        rows = Spooled(b"".join(c.data for c in ready))
        dedupe = any(c.path in self._uncertain for c in ready)
        names = ",".join(sorted({f"{c.path.parent.name}/{c.path.name}" for c in ready}))
        try:
            for use_case, count in counts.items():
                committed, skipped = self._commit(use_case, rows, count, names, dedupe)
                result.committed += committed
                result.skipped += skipped
        except Exception:
            self._uncertain.update(c.path for c in ready)  # it may have landed: deduplicate
            result.uncommitted += sum(counts.values())
            raise
        self._uncertain.difference_update(c.path for c in ready)

    def _commit(
        self, use_case: str, rows: Spooled, count: int, names: str, dedupe: bool
    ) -> tuple[int, int]:
        spec = self.tables[use_case]
        frame = frame_of(rows, spec, use_case)
        frame = frame.unique(subset=list(KEY), keep="first", maintain_order=True)
        if dedupe:
            frame = self._without_committed(spec, frame)
        skipped = count - frame.height
        if frame.height:
            commit = CommitInfo(extra={"spool_segments": names})
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


def _take_folder(folder: Path) -> int | None:
    """A worker folder's state: -1 while its worker lives, the fd of its taken ``LOCK`` when
    the worker is gone, None for a folder that is not a worker's."""
    try:
        fd = os.open(folder / LOCK, os.O_RDWR)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return -1
    return fd


def _remove_stale_staging(path: Path) -> None:
    """A worker that died while making its folder left it under the staging name."""
    try:
        if time.time() - path.stat().st_mtime > STALE_STAGING_S:
            shutil.rmtree(path, ignore_errors=True)
    except FileNotFoundError:
        pass


class CommitLoop:
    """Runs ``committer.flush`` every ``interval_s`` on a daemon thread until ``stop``, which
    flushes once more and gives the lock back. ``nice`` lowers the thread's CPU priority (and
    that of the threads it starts: the Delta and polars pools, when it is their first user).
    ``setup`` runs first on the thread; ``started`` is set when it and the first flush are done.
    ``on_flush(committer)`` follows every flush, ``on_error(exception)`` a failed one.
    """

    def __init__(
        self,
        committer: AuditCommitter,
        interval_s: float,
        *,
        nice: int = 0,
        setup: Callable[[], None] | None = None,
        on_flush: Callable[[AuditCommitter], None] | None = None,
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        self.committer = committer
        self.interval_s = interval_s
        self.nice = nice
        self._setup = setup
        self._on_flush = on_flush
        self._on_error = on_error
        self._stop = threading.Event()
        self.started = threading.Event()
        self.first: FlushResult | None = None
        self.error: Exception | None = None  # what ``setup`` raised (the loop did not run)
        self._thread = threading.Thread(target=self._run, name="audit-committer", daemon=True)

    def start(self) -> CommitLoop:
        self._thread.start()
        return self

    def _run(self) -> None:
        if self.nice:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self.nice)
        try:
            if self._setup is not None:
                self._setup()
        except Exception as exc:
            self.error = exc
            self.started.set()
            return
        self.first = self._flush()
        self.started.set()
        while not self._stop.wait(self.interval_s):
            self._flush()

    def _flush(self) -> FlushResult | None:
        result = None
        try:
            result = self.committer.flush()
        except Exception as exc:
            logger.exception("audit flush failed: the rows stay spooled and are retried")
            if self._on_error is not None:
                self._on_error(exc)
        if self._on_flush is not None:
            self._on_flush(self.committer)
        return result

    def stop(self) -> FlushResult | None:
        """Stop the loop, flush what is left (the caller has stopped every writer it can), and
        give the lock back."""
        self._stop.set()
        self._thread.join(timeout=120)
        try:
            return self._flush()
        finally:
            self.committer.close()


def ensure_tables(lake: Lakehouse, names: Iterable[str]) -> None:
    """Create the online-predictions tables before workers append to them (two workers creating
    one table at once would conflict)."""
    for name in names:
        try:
            lake.create_if_missing(name)
        except Exception:
            if not lake.exists(name):  # not the race with another process: a real failure
                raise
