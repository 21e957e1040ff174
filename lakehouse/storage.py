"""The lakehouse: typed, versioned Delta tables read and written through one small API.

Every write is one Delta commit: it either becomes a new table version in full or leaves the
table as it was. Writes are checked against the catalog schema first, and every commit carries
metadata (operation, row count, code version, Dagster run id, asset key, partition, commit id
and attempts).

    lake = Lakehouse(catalog=catalog)
    lake.append("bronze.usage", frame, commit=CommitInfo(run_id=...))
    lake.replace("bronze.usage", frame, partition={"_batch_date": day})
    with lake.staged_replace("bronze.usage", partition={"_batch_date": days}) as staged:
        for chunk in chunks:
            staged.write(chunk)                     # files now, one commit at the end
    lake.merge("silver.customers", frame)
    lake.replace_keys("silver.tickets", rebuilt, keys)  # rows of those keys become rebuilt's
    lake.scan("silver.customers", version=3).filter(...).collect()

Concurrent writers: a commit that loses the race to another writer is retried (``RetryPolicy``:
exponential back-off with jitter, bounded attempts and time) when that is safe: appends; replaces
of partitions the winners did not touch; merges, re-planned against the new snapshot. A conflict
that is not safe (the winner changed data we replace, or the schema) raises
``ConcurrentWriteError`` naming the table, our operation and the winning commit. Either way the
version a write reports is read from the log entry of its own commit.

The same fast write path (polars writes the Parquet files, their footers give the Delta
statistics, one commit adds them) serves local folders and object stores (``s3://…`` with
``SCOREHOUSE_STORAGE_OPTIONS``).
"""

from __future__ import annotations

import contextlib
import random
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import polars as pl
from deltalake import DeltaTable, Field, Schema, write_deltalake
from deltalake.exceptions import CommitFailedError, DeltaError
from deltalake.exceptions import TableNotFoundError as DeltaTableNotFoundError
from deltalake.transaction import (
    AddAction,
    CommitProperties,
    RemoveAction,
    create_table_with_add_actions,
)

from lakehouse import config
from lakehouse._files import TableFiles, partition_value_string, polars_storage_options, table_files
from lakehouse.catalog import Catalog, TableSpec
from lakehouse.commit import ATTEMPTS, COMMIT_ID, CommitInfo, LogEntry, RetryPolicy
from lakehouse.errors import (
    ConcurrentWriteError,
    LakehouseError,
    SchemaMismatchError,
    StorageAccessError,
    TableNotFoundError,
    VersionNotAvailableError,
)

# A commit attempt: given the snapshot it plans against (None: no table yet) and the commit
# properties to use, it commits or raises; it returns False when there was nothing to commit
# (a merge that changes no row), leaving the table at the snapshot's version.
_Attempt = Callable[[DeltaTable | None, CommitProperties], bool]

# Words in object-store errors that mean "credentials or rights refused" / "store unreachable".
# The status code must stand alone: messages carry timings ("in 251.074036ms") and random file
# names whose digits can contain "403".
_REFUSED = re.compile(
    r"(?<![\w.])403(?![\w.])|forbidden|invalidaccesskeyid|signaturedoesnotmatch|accessdenied"
    r"|lacked the necessary privileges|expiredtoken"
)
_UNREACHABLE = ("connection refused", "error sending request", "connection reset", "timed out")


@dataclass(frozen=True)
class WriteResult:
    """Outcome of one write: the table version its commit created (read from the log entry
    holding its commit id), the rows it wrote and the commit attempts it took."""

    table: str
    version: int
    rows: int
    operation: str
    attempts: int = 1


@dataclass(frozen=True)
class _Scope:
    """What a write replaces, to judge whether a concurrent commit conflicts with it.

    ``partitions=None``: nothing (appends, merges); ``{}``: the whole table; otherwise the
    partition values (as the log stores them) of each replaced partition column. ``rows``: a
    predicate replace, which cannot tell which rows a concurrent change touched.
    ``replanned``: a merge, planned and executed again against the new snapshot.
    """

    partitions: Mapping[str, list[str | None]] | None = None
    rows: bool = False
    replanned: bool = False

    @property
    def blind(self) -> bool:
        """A plain append: delta-rs may itself move it past concurrent commits (it checks
        their metadata and protocol). Every other write commits only on the snapshot it was
        planned on, and the retry loop judges each winner itself: delta-rs would let a
        concurrent append into a replaced partition survive the replace."""
        return self.partitions is None and not self.rows and not self.replanned

    def conflict(self, entry: LogEntry) -> str | None:
        """Why ``entry`` makes retrying this write unsafe, or None if it does not."""
        if entry.protocol_changed:
            return "changed the table protocol"
        if self.replanned or not entry.changes_data:
            return None
        if self.rows:
            return "changed rows of the table, which the predicate may cover"
        if self.partitions is None:
            return None
        if entry.touches(self.partitions):
            return "changed data in the partitions this write replaces"
        return None


class _Staged:
    """Files written as frames arrive, committed once when the ``with`` block ends cleanly."""

    operation = "append"

    def __init__(
        self,
        lake: Lakehouse,
        spec: TableSpec,
        commit: CommitInfo | None,
        partition: Mapping[str, Any] | None = None,
    ) -> None:
        self._lake, self._spec, self._commit = lake, spec, commit
        self._partition = partition
        self._actions: list[AddAction] = []
        self.rows = 0
        self.result: WriteResult | None = None

    def write(self, frame: pl.DataFrame) -> None:
        """Check ``frame`` and write its files now (not visible until the commit)."""
        conformed = self._spec.conform(frame)
        if self._partition is not None:
            self._lake._check_partition(self._spec, conformed, self._partition)
        if not len(conformed):
            return
        self._actions += self._lake._write_files(self._spec, conformed)
        self.rows += len(conformed)

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is not None:
            return  # written files stay unreferenced; vacuum removes them
        self.result = self._lake._commit_actions(
            self._spec, self._actions, self.rows, self.operation, self._commit, self._partition
        )


class StagedAppend(_Staged):
    """Files written now, committed as one append when the ``with`` block ends without error."""

    def __enter__(self) -> StagedAppend:
        return self


class StagedReplace(_Staged):
    """Files written now, committed as one replace of all the given partitions when the
    ``with`` block ends without error; every written row must belong to those partitions."""

    operation = "replace"

    def __enter__(self) -> StagedReplace:
        return self


class Lakehouse:
    """Delta tables of a catalog under one root URI (``SCOREHOUSE_LAKEHOUSE_URI``).

    The catalog is always given: the storage layer knows no project tables of its own.
    ``retry`` bounds how writes retry commits that lose a race to another writer.
    """

    def __init__(
        self,
        uri: str | Path | None = None,
        *,
        catalog: Catalog,
        storage_options: dict[str, str] | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.uri = str(uri) if uri is not None else config.lakehouse_uri()
        self.catalog = catalog
        self.storage_options = (
            storage_options if storage_options is not None else config.storage_options()
        )
        self.retry = retry or RetryPolicy()
        self._remote = config.is_remote(self.uri)
        self._rng = random.Random()
        self._table_files: dict[str, TableFiles] = {}

    # ----------------------------------------------------------------------------- locations
    def table_uri(self, name: str) -> str:
        spec = self.catalog[name]
        return f"{self.uri.rstrip('/')}/{spec.layer}/{spec.table}"

    def exists(self, name: str) -> bool:
        with self._storage_errors(name):
            return DeltaTable.is_deltatable(
                self.table_uri(name), storage_options=self.storage_options
            )

    def delta_table(self, name: str, version: int | None = None) -> DeltaTable:
        """The ``DeltaTable`` of ``name`` (latest, or at ``version``)."""
        uri = self.table_uri(name)
        with self._storage_errors(name):
            try:
                return DeltaTable(uri, version=version, storage_options=self.storage_options)
            except DeltaTableNotFoundError:
                raise TableNotFoundError(
                    f"{name}: no Delta table at {uri} (never written)"
                ) from None
            except Exception as exc:  # delta-rs raises generic errors for missing log versions
                if version is not None and _access_problem(exc) is None:
                    raise VersionNotAvailableError(
                        f"{name}: version {version} cannot be loaded ({exc})"
                    ) from exc
                raise

    def create_if_missing(self, name: str) -> None:
        """Create the table empty (catalog schema and properties) unless it exists."""
        if not self.exists(name):
            self.append(name, _empty(self.catalog[name]))

    def version(self, name: str) -> int | None:
        """Latest version of the table, or None if it was never written."""
        return self.delta_table(name).version() if self.exists(name) else None

    # -------------------------------------------------------------------------------- writes
    def append(
        self, name: str, frame: pl.DataFrame, *, commit: CommitInfo | None = None
    ) -> WriteResult:
        """Add ``frame``'s rows to the table (created on first write)."""
        spec = self.catalog[name]
        frame = spec.conform(frame)
        actions = self._write_files(spec, frame)
        return self._commit_actions(spec, actions, len(frame), "append", commit)

    def append_batches(
        self, name: str, frames: Iterable[pl.DataFrame], *, commit: CommitInfo | None = None
    ) -> WriteResult:
        """Append a stream of frames as ONE commit: each frame's files are written as it
        arrives (memory holds one frame), and nothing is visible until all of them are.

        If the stream raises, no commit happens and the table is unchanged.
        """
        with self.staged_append(name, commit=commit) as staged:
            for frame in frames:
                staged.write(frame)
        assert staged.result is not None
        return staged.result

    def staged_append(self, name: str, *, commit: CommitInfo | None = None) -> StagedAppend:
        """A context manager that writes frames as they come and commits them once on exit.

        Leaving the block with an exception commits nothing. Nested staged appends commit in
        reverse order of entry (the innermost first).
        """
        return StagedAppend(self, self.catalog[name], commit)

    def staged_replace(
        self, name: str, *, partition: Mapping[str, Any], commit: CommitInfo | None = None
    ) -> StagedReplace:
        """A context manager that replaces ``partition`` (as in ``replace``) with the frames
        written inside the block, in ONE commit on exit.

        Each ``write`` checks its rows belong to ``partition`` and writes their files at once,
        so memory holds one frame at a time however many the block writes. Leaving the block
        with an exception commits nothing: readers keep seeing the previous version. Partitions
        named but never written to are emptied, as ``replace`` does.
        """
        spec = self.catalog[name]
        if spec.append_only:
            raise LakehouseError(f"{name} is append-only: replace is refused")
        self._check_partition(spec, _empty(spec), partition)
        return StagedReplace(self, spec, commit, partition)

    def replace(
        self,
        name: str,
        frame: pl.DataFrame,
        *,
        partition: Mapping[str, Any] | None = None,
        predicate: str | None = None,
        commit: CommitInfo | None = None,
    ) -> WriteResult:
        """Atomically replace partitions' rows (or those matching a predicate) with ``frame``.

        ``partition`` maps partition columns to a value, or to a collection of values to
        replace several partitions in one commit.

        Readers see either the old rows or the new ones, never both or neither. Re-running the
        same replace is idempotent. Every row of ``frame`` must belong to the partition or match
        the predicate; otherwise nothing is written. Without ``partition`` and ``predicate`` the
        whole table is replaced.
        """
        spec = self.catalog[name]
        if spec.append_only:
            raise LakehouseError(f"{name} is append-only: replace is refused")
        if partition is not None and predicate is not None:
            raise ValueError("pass either partition or predicate, not both")
        frame = spec.conform(frame)
        if partition is not None:
            self._check_partition(spec, frame, partition)
            actions = self._write_files(spec, frame)
            return self._commit_actions(spec, actions, len(frame), "replace", commit, partition)
        if predicate is None:
            actions = self._write_files(spec, frame)
            return self._commit_actions(spec, actions, len(frame), "overwrite", commit, {})
        return self._replace_where(spec, frame, predicate, commit)

    def merge(
        self,
        name: str,
        frame: pl.DataFrame,
        *,
        commit: CommitInfo | None = None,
    ) -> WriteResult:
        """Upsert ``frame`` on the table's primary key: update matching rows, insert the others.

        ``frame`` must have unique keys. When the table is partitioned, only the partitions that
        ``frame`` touches are scanned (the partition columns must be part of the key or of the
        frame, as they are in every catalog table). A merge that loses a race is re-planned:
        read and executed again against the new snapshot.
        """
        spec = self.catalog[name]
        if spec.append_only:
            raise LakehouseError(f"{name} is append-only: merge is refused")
        if not spec.primary_key:
            raise LakehouseError(f"{name} has no primary key: merge needs one")
        frame = spec.conform(frame)
        duplicates = len(frame) - frame.select(spec.primary_key).n_unique()
        if duplicates:
            raise SchemaMismatchError(
                f"{name}: {duplicates} rows of the merge source repeat a primary key "
                f"{list(spec.primary_key)} (rule: unique key)"
            )
        if frame.is_empty() and self.exists(name):
            dt = self._writable(spec, self.delta_table(name))
            return WriteResult(spec.name, dt.version(), 0, "merge")
        created: list[AddAction] = []  # files of a first write, kept across attempts

        def attempt(dt: DeltaTable | None, properties: CommitProperties) -> bool:
            if dt is None:
                self._create_with(spec, frame, created, properties)
                return True
            self._writable(spec, dt)
            metrics = self._merger(spec, dt, frame, properties).execute()
            return bool(
                metrics.get("num_target_files_added") or metrics.get("num_target_files_removed")
            )

        return self._committed(spec, "merge", len(frame), commit, _Scope(replanned=True), attempt)

    def replace_keys(
        self,
        name: str,
        frame: pl.DataFrame,
        keys: pl.DataFrame,
        *,
        commit: CommitInfo | None = None,
    ) -> WriteResult:
        """Atomically make the rows of primary keys ``keys`` exactly ``frame``'s rows.

        A row of ``frame`` replaces the table's row with its key (whatever the version column
        says: this is how a correction moves a version back) or is inserted; a table row whose
        key is in ``keys`` but not in ``frame`` is deleted; other rows stay. Every row of
        ``frame`` must have its key in ``keys``. One commit; re-planned against the new snapshot
        when it loses a race, as a merge is.
        """
        spec = self.catalog[name]
        if spec.append_only:
            raise LakehouseError(f"{name} is append-only: replace_keys is refused")
        if not spec.primary_key:
            raise LakehouseError(f"{name} has no primary key: replace_keys needs one")
        frame, keys = self._keyed(spec, frame, keys)
        key = list(spec.primary_key)
        gone = keys.join(frame.select(key), on=key, how="anti")
        source = pl.concat(
            [
                frame.with_columns(pl.lit(True).alias(_KEEP)),
                gone.with_columns(pl.lit(False).alias(_KEEP)),
            ],
            how="diagonal",
        )
        created: list[AddAction] = []  # files of a first write, kept across attempts

        def attempt(dt: DeltaTable | None, properties: CommitProperties) -> bool:
            if dt is None:
                self._create_with(spec, frame, created, properties)
                return True
            self._writable(spec, dt)
            if source.is_empty():
                return False
            conditions = [f"t.`{c}` = s.`{c}`" for c in key]
            conditions += self._partition_pruning(spec, source)
            columns = {c: f"s.`{c}`" for c in spec.polars_schema}
            metrics = (
                dt.merge(
                    source.to_arrow(),
                    predicate=" AND ".join(conditions),
                    source_alias="s",
                    target_alias="t",
                    commit_properties=properties,
                )
                .when_matched_delete(predicate=f"NOT s.`{_KEEP}`")
                .when_matched_update(updates=columns)
                .when_not_matched_insert(updates=columns, predicate=f"s.`{_KEEP}`")
                .execute()
            )
            return bool(
                metrics.get("num_target_files_added") or metrics.get("num_target_files_removed")
            )

        return self._committed(
            spec, "replace_keys", len(frame), commit, _Scope(replanned=True), attempt
        )

    @staticmethod
    def _keyed(
        spec: TableSpec, frame: pl.DataFrame, keys: pl.DataFrame
    ) -> tuple[pl.DataFrame, pl.DataFrame]:
        """``frame`` conformed and ``keys`` as unique key rows, or ``SchemaMismatchError``."""
        frame = spec.conform(frame)
        key = list(spec.primary_key)
        keys = keys.select(pl.col(c).cast(spec.polars_schema[c]) for c in key).unique()
        problems = []
        if nulls := keys.filter(pl.any_horizontal(pl.col(key).is_null())).height:
            problems.append(f"{nulls} keys have nulls")
        if repeated := len(frame) - frame.select(key).n_unique():
            problems.append(f"{repeated} rows repeat a primary key (rule: unique key)")
        if outside := frame.join(keys, on=key, how="anti").height:
            problems.append(f"{outside} rows have a key outside the keys replaced")
        if problems:
            raise SchemaMismatchError(f"{spec.name}: replace_keys {key}: " + "; ".join(problems))
        return frame, keys

    # --------------------------------------------------------------------------------- reads
    def scan(
        self,
        name: str,
        *,
        version: int | None = None,
        as_of: datetime | None = None,
        unrecorded: bool = False,
    ) -> pl.LazyFrame:
        """Lazy frame of the table (latest, at ``version``, or as of a timestamp).

        Filters on partition columns prune partitions; filters on other columns skip files by
        their min/max statistics. A version whose files were vacuumed raises
        ``VersionNotAvailableError`` instead of returning partial data. A table with a
        ``recorded_by`` record shows only the rows its record (as of ``as_of``, else the
        latest) holds the key of, unless ``unrecorded``.
        """
        frame = self._scan(name, version, as_of)
        keys = None if unrecorded else self.recorded_keys(name, as_of=as_of)
        if keys is None:
            return frame
        return frame.join(keys, on=keys.collect_schema().names()[0], how="semi")

    def recorded_keys(self, name: str, *, as_of: datetime | None = None) -> pl.LazyFrame | None:
        """The keys ``name``'s record holds (``TableSpec.recorded_by``; as of ``as_of``, else the
        latest), as a one-column frame; None when the table has no record."""
        spec = self.catalog[name]
        if spec.recorded_by is None:
            return None
        record, key = spec.recorded_by
        if self.exists(record):
            try:
                return self._scan(record, None, as_of).select(key).unique()
            except VersionNotAvailableError:
                pass  # the record table did not exist yet at ``as_of``: nothing was recorded
        return pl.LazyFrame(schema={key: spec.polars_schema[key]})

    def _scan(self, name: str, version: int | None, as_of: datetime | None) -> pl.LazyFrame:
        if version is not None and as_of is not None:
            raise ValueError("pass either version or as_of, not both")
        dt = self.delta_table(name)
        if as_of is not None:
            first = min((h["version"], h["timestamp"]) for h in self.history(name))
            if as_of.timestamp() * 1000 < first[1]:
                # delta-rs would load version 0 for an instant before the table existed.
                raise VersionNotAvailableError(
                    f"{name}: no version as of {as_of} (its first commit is later)"
                )
            try:
                dt.load_as_version(as_of)
            except Exception as exc:
                raise VersionNotAvailableError(f"{name}: no version as of {as_of} ({exc})") from exc
        elif version is not None:
            dt = self.delta_table(name, version=version)
        if version is not None or as_of is not None:
            self._check_files_present(name, dt)
        return pl.scan_delta(dt, storage_options=polars_storage_options(self.storage_options))

    def read(
        self,
        name: str,
        *,
        version: int | None = None,
        as_of: datetime | None = None,
        columns: list[str] | None = None,
        where: pl.Expr | None = None,
        unrecorded: bool = False,
    ) -> pl.DataFrame:
        """Eager read of the table; see ``scan`` for versions, pruning and records."""
        lazy = self.scan(name, version=version, as_of=as_of, unrecorded=unrecorded)
        if where is not None:
            lazy = lazy.filter(where)
        if columns is not None:
            lazy = lazy.select(columns)
        with self._storage_errors(name):
            return lazy.collect()

    def history(self, name: str, limit: int | None = None) -> list[dict[str, Any]]:
        """Commits of the table, newest first, with our commit metadata."""
        dt = self.delta_table(name)
        with self._storage_errors(name):
            return dt.history(limit)

    def row_count(self, name: str, version: int | None = None) -> int:
        """Rows in the table at ``version`` from the log's file statistics (no data read)."""
        actions = pl.DataFrame(
            self.delta_table(name, version=version).get_add_actions(flatten=True)
        )
        return int(actions["num_records"].sum()) if len(actions) else 0

    # ------------------------------------------------------------------- commits and retries
    def _committed(
        self,
        spec: TableSpec,
        operation: str,
        rows: int,
        commit: CommitInfo | None,
        scope: _Scope,
        attempt: _Attempt,
    ) -> WriteResult:
        """Run ``attempt`` until its commit lands; return the version that commit created.

        A commit that loses a race is retried after a back-off when every commit that won
        since our snapshot leaves it safe (``_Scope.conflict``, and the schema still the
        catalog's); otherwise, or when the retry policy runs out, ``ConcurrentWriteError``.
        """
        commit_id = uuid.uuid4().hex
        started = time.monotonic()
        number = 1
        while True:
            dt = self._snapshot(spec)
            read_version = dt.version() if dt is not None else -1
            properties = self._commit_properties(
                commit, operation, rows, commit_id, number, rebase=scope.blind
            )
            try:
                with self._storage_errors(spec.name, commit_id):
                    committed = attempt(dt, properties)
            except Exception as exc:
                winners = self._lost_race(spec, exc, read_version)
                if winners is None:
                    raise
                self._check_retry_safe(spec, operation, scope, winners, exc)
                pause = self.retry.delay(number, self._rng)
                elapsed = time.monotonic() - started
                if number >= self.retry.max_attempts or elapsed + pause > self.retry.max_seconds:
                    raise ConcurrentWriteError(
                        f"{spec.name}: {operation} gave up after {number} attempts in "
                        f"{elapsed:.1f} s (retry policy: at most {self.retry.max_attempts} "
                        f"attempts, {self.retry.max_seconds:g} s); other writers kept committing "
                        f"first, last {winners[-1].describe()}"
                    ) from exc
                time.sleep(pause)
                number += 1
                continue
            version = self._version_of(spec, commit_id, read_version) if committed else read_version
            return WriteResult(spec.name, version, rows, operation, number)

    def _lost_race(
        self, spec: TableSpec, exc: Exception, read_version: int
    ) -> list[LogEntry] | None:
        """The commits that won since ``read_version`` if ``exc`` means we lost a race to them;
        None if it is an error of its own (raised as it is)."""
        if isinstance(exc, LakehouseError):  # ours, StorageAccessError included
            return None
        if not isinstance(exc, CommitFailedError) and not (
            read_version < 0 and isinstance(exc, DeltaError) and self.exists(spec.name)
        ):
            return None  # a creation race shows as "table already exists", nothing else does
        winners = list(self._log_since(spec, read_version))
        return winners or None

    def _check_retry_safe(
        self,
        spec: TableSpec,
        operation: str,
        scope: _Scope,
        winners: list[LogEntry],
        exc: Exception,
    ) -> None:
        for entry in winners:
            reason = scope.conflict(entry)
            if reason is None and entry.schema is not None:
                problems = _schema_problems(spec, Schema.from_json(entry.schema))
                if problems:
                    reason = "changed the schema to one the catalog does not allow: " + problems
            if reason is not None:
                raise ConcurrentWriteError(
                    f"{spec.name}: our {operation} ({self._describe(scope)}) conflicts with "
                    f"{entry.describe()}, committed concurrently, which {reason}; not retried "
                    "(rule: only appends, replaces of untouched partitions and re-planned merges "
                    "are retried); the table is as that writer left it"
                ) from exc

    @staticmethod
    def _describe(scope: _Scope) -> str:
        if scope.rows:
            return "replace by predicate"
        if scope.partitions is None:
            return "re-planned" if scope.replanned else "blind append"
        if not scope.partitions:
            return "whole table"
        return ", ".join(f"{c} in {v}" for c, v in scope.partitions.items())

    def _log_since(self, spec: TableSpec, read_version: int) -> Iterator[LogEntry]:
        """Log entries after ``read_version``, oldest first, up to the latest (read lazily)."""
        files = self._files(spec)
        version = read_version + 1
        while (raw := files.log_entry(version)) is not None:
            yield LogEntry.parse(version, raw)
            version += 1

    def _version_of(self, spec: TableSpec, commit_id: str, read_version: int) -> int:
        """The version whose commit holds ``commit_id`` (we committed after ``read_version``)."""
        with self._storage_errors(spec.name):
            for entry in self._log_since(spec, read_version):
                if entry.commit_id == commit_id:
                    return entry.version
            for commit in self.delta_table(spec.name).history():  # log entries cleaned up
                if commit.get(COMMIT_ID) == commit_id:
                    return int(commit["version"])
        raise LakehouseError(
            f"{spec.name}: commit {commit_id} succeeded but is not in the Delta log"
        )

    def _commit_properties(
        self,
        commit: CommitInfo | None,
        operation: str,
        rows: int,
        commit_id: str | None = None,
        attempt: int = 1,
        *,
        rebase: bool = True,
    ) -> CommitProperties:
        """Our metadata; ``rebase=False``: fail on any newer commit instead of moving past it."""
        metadata = (commit or CommitInfo()).to_metadata(operation, rows)
        if commit_id is not None:
            metadata |= {COMMIT_ID: commit_id, ATTEMPTS: attempt}
        return CommitProperties(custom_metadata=metadata, max_commit_retries=None if rebase else 0)

    # ------------------------------------------------------------------------------ internals
    def _files(self, spec: TableSpec) -> TableFiles:
        uri = self.table_uri(spec.name)
        if uri not in self._table_files:  # an object-store client per table, made once
            self._table_files[uri] = table_files(uri, self.storage_options)
        return self._table_files[uri]

    def _snapshot(self, spec: TableSpec) -> DeltaTable | None:
        """The latest snapshot of the table, or None if it does not exist yet."""
        with self._storage_errors(spec.name):
            try:
                return DeltaTable(self.table_uri(spec.name), storage_options=self.storage_options)
            except DeltaTableNotFoundError:
                return None

    def _write_files(self, spec: TableSpec, frame: pl.DataFrame) -> list[AddAction]:
        if not len(frame):
            return []
        with self._storage_errors(spec.name):
            return self._files(spec).write_frame(frame, spec.partition_by)

    def _writable(self, spec: TableSpec, dt: DeltaTable) -> DeltaTable:
        """The existing table, with its schema brought to the catalog's (additive only)."""
        problems = _schema_problems(spec, dt.schema())
        if problems:
            raise SchemaMismatchError(
                f"{spec.name}: table schema differs from the catalog and only additive evolution "
                f"{'is' if spec.additive_evolution else 'is not'} allowed: {problems}"
            )
        current = {f.name for f in dt.schema().fields}
        added = [f for f in _delta_schema(spec).fields if f.name not in current]
        if added:
            dt.alter.add_columns([Field(f.name, f.type, nullable=True) for f in added])
        return dt

    def _create_with(
        self,
        spec: TableSpec,
        frame: pl.DataFrame,
        created: list[AddAction],
        properties: CommitProperties,
    ) -> None:
        """Create the table with ``frame`` as its first version. The files are written once:
        ``created`` keeps them across attempts, so a retried creation commits the same files."""
        if not created:
            created.extend(self._write_files(spec, frame))
        self._create(spec, created, properties)

    def _create(
        self, spec: TableSpec, actions: list[AddAction], properties: CommitProperties
    ) -> None:
        create_table_with_add_actions(
            self.table_uri(spec.name),
            _delta_schema(spec),
            actions,
            mode="error",
            partition_by=list(spec.partition_by) or None,
            name=spec.name,
            description=spec.description,
            configuration=spec.table_properties(),
            storage_options=self.storage_options,
            commit_properties=properties,
        )

    def _commit_actions(
        self,
        spec: TableSpec,
        actions: list[AddAction],
        rows: int,
        operation: str,
        commit: CommitInfo | None,
        partition: Mapping[str, Any] | None = None,
    ) -> WriteResult:
        """Commit written files: append, or replace ``partition`` (``{}``: the whole table)."""
        mode = "append" if partition is None else "overwrite"
        values = None if partition is None else _log_partition_values(partition)
        filters = [(c, "in", v) for c, v in values.items()] if values else None

        def attempt(dt: DeltaTable | None, properties: CommitProperties) -> bool:
            if dt is None:
                self._create(spec, actions, properties)
                return True
            self._writable(spec, dt)
            dt.create_write_transaction(
                list[AddAction | RemoveAction](actions),
                mode=mode,
                schema=dt.schema(),
                partition_by=list(spec.partition_by) or None,
                partition_filters=filters,
                commit_properties=properties,
            )
            return True

        return self._committed(spec, operation, rows, commit, _Scope(partitions=values), attempt)

    def _merger(
        self, spec: TableSpec, dt: DeltaTable, frame: pl.DataFrame, properties: CommitProperties
    ) -> Any:
        conditions = [f"t.`{c}` = s.`{c}`" for c in spec.primary_key]
        conditions += self._partition_pruning(spec, frame)
        merger = dt.merge(
            frame.to_arrow(),
            predicate=" AND ".join(conditions),
            source_alias="s",
            target_alias="t",
            commit_properties=properties,
        )
        newer = (
            f"s.`{spec.version_column}` >= t.`{spec.version_column}`"
            if spec.version_column
            else None
        )
        return merger.when_matched_update_all(predicate=newer).when_not_matched_insert_all()

    def _replace_where(
        self, spec: TableSpec, frame: pl.DataFrame, predicate: str, commit: CommitInfo | None
    ) -> WriteResult:
        outside = pl.SQLContext(frame=frame).execute(
            f"SELECT COUNT(*) AS n FROM frame WHERE NOT ({predicate})", eager=True
        )["n"][0]
        if outside:
            raise LakehouseError(
                f"{spec.name}: {outside} of {len(frame)} rows do not match the replace predicate "
                f"{predicate!r} (rule: rows must lie inside what they replace); nothing written"
            )
        created: list[AddAction] = []

        def attempt(dt: DeltaTable | None, properties: CommitProperties) -> bool:
            if dt is None:
                self._create_with(spec, frame, created, properties)
                return True
            self._writable(spec, dt)
            write_deltalake(
                dt,
                frame.to_arrow(),
                mode="overwrite",
                predicate=predicate,
                storage_options=self.storage_options,
                commit_properties=properties,
            )
            return True

        return self._committed(spec, "replace", len(frame), commit, _Scope(rows=True), attempt)

    @staticmethod
    def _check_partition(
        spec: TableSpec, frame: pl.DataFrame, partition: Mapping[str, Any]
    ) -> None:
        unknown = [c for c in partition if c not in spec.partition_by]
        if unknown or not partition:
            raise ValueError(
                f"{spec.name}: replace partition must name partition columns "
                f"{list(spec.partition_by)}, got {list(partition)}"
            )
        for column, values in _partition_values(partition).items():
            if not values:
                raise ValueError(f"{spec.name}: replace partition {column!r} names no values")
            outside = frame.filter(~pl.col(column).is_in(values)).height
            if outside:
                expected = f"!= {values[0]!r}" if len(values) == 1 else f"not in {values!r}"
                raise LakehouseError(
                    f"{spec.name}: {outside} of {len(frame)} rows have {column} {expected} "
                    "(rule: rows must belong to the partition they replace); nothing written"
                )

    @staticmethod
    def _partition_pruning(spec: TableSpec, frame: pl.DataFrame) -> list[str]:
        """Literal IN-lists on partition columns so a merge only rewrites touched partitions."""
        clauses = []
        for column in spec.partition_by:
            values = frame[column].unique().sort().to_list()
            clauses.append(f"t.`{column}` IN ({', '.join(_sql_literal(v) for v in values)})")
        return clauses

    def _check_files_present(self, name: str, dt: DeltaTable) -> None:
        with self._storage_errors(name):
            missing = self._files(self.catalog[name]).missing(dt.file_uris())
        if missing:
            raise VersionNotAvailableError(
                f"{name}: version {dt.version()} refers to {len(missing)} data files that were "
                f"vacuumed (e.g. {missing[0]}); it can no longer be read"
            )

    @contextlib.contextmanager
    def _storage_errors(self, name: str, commit_id: str | None = None) -> Iterator[None]:
        """Object-store refusals and outages as ``StorageAccessError`` naming the table and
        the setting to check; every other error passes unchanged. ``commit_id``: the error
        came while committing, so the commit may have landed before the store went away."""
        try:
            yield
        except (OSError, DeltaError, pl.exceptions.ComputeError) as exc:
            problem = _access_problem(exc) if self._remote else None
            if problem is None or isinstance(exc, CommitFailedError):
                raise
            landed = (
                f"; if the commit reached the store first, the table history shows it with "
                f"{COMMIT_ID}={commit_id}"
                if commit_id
                else ""
            )
            raise StorageAccessError(
                f"{name}: the object store {problem} for {self.table_uri(name)} "
                f"({_first_line(exc)}); check the endpoint and credentials in "
                f"SCOREHOUSE_STORAGE_OPTIONS{landed}"
            ) from exc


def _access_problem(exc: BaseException) -> str | None:
    """Which access problem ``exc`` reports, or None. A transport failure is checked first: a
    request that never got an answer cannot have been refused."""
    message = str(exc).lower()
    if any(word in message for word in _UNREACHABLE):
        return "could not be reached"
    if _REFUSED.search(message):
        return "refused the credentials"
    return None


def _first_line(exc: BaseException) -> str:
    """The gist of a delta-rs / object-store error: its first lines, without terminal colours."""
    text = re.sub(r"\x1b\[[0-9;]*m|↳", "", str(exc))
    lines = [" ".join(line.split()) for line in text.splitlines() if line.strip()]
    return " / ".join(lines[:4])[:400] if lines else type(exc).__name__


def _schema_problems(spec: TableSpec, schema: Schema) -> str:
    """How ``schema`` differs from the catalog's beyond what the catalog allows ("" if not)."""
    current = {f.name: f for f in schema.fields}
    wanted = {f.name: f for f in _delta_schema(spec).fields}
    problems = [
        f"{n}: table has {current[n].type}, catalog has {wanted[n].type}"
        for n in current
        if n in wanted and str(current[n].type) != str(wanted[n].type)
    ]
    problems += [f"{n}: in the table, not in the catalog" for n in current if n not in wanted]
    added = [n for n in wanted if n not in current]
    if problems or (added and not spec.additive_evolution):
        problems += [f"{n}: new in the catalog" for n in added]
    return "; ".join(problems)


def _empty(spec: TableSpec) -> pl.DataFrame:
    return pl.DataFrame(schema=spec.polars_schema)


_KEEP = "__scorehouse_keep"
"""Marker column of a ``replace_keys`` merge source: true rows are written, false keys deleted."""


def _partition_values(partition: Mapping[str, Any]) -> dict[str, list[Any]]:
    """``{column: value or collection of values}`` → ``{column: [values]}``."""
    return {
        column: sorted(value) if isinstance(value, list | tuple | set | frozenset) else [value]
        for column, value in partition.items()
    }


def _log_partition_values(partition: Mapping[str, Any]) -> dict[str, list[str | None]]:
    """Partition values as the Delta log stores them (strings)."""
    return {
        column: [partition_value_string(v) for v in values]
        for column, values in _partition_values(partition).items()
    }


def _delta_schema(spec: TableSpec) -> Schema:
    return Schema.from_arrow(pl.DataFrame(schema=spec.polars_schema).to_arrow().schema)


def _sql_literal(value: Any) -> str:
    if isinstance(value, datetime):
        return f"TIMESTAMP '{value.isoformat()}'"
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
