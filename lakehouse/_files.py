"""Write Parquet data files with polars and describe them as Delta ``AddAction`` entries.

delta-rs' own writer is about 3x slower than polars' Parquet writer on wide frames. We write
the files with polars, read their footers for row counts and column statistics (so readers can
skip files), and commit them to the Delta log in one transaction. Nothing becomes visible until
that commit: files of a failed write are unreferenced and removed by vacuum. The same path
serves local folders and object stores (``s3://…``): only where the bytes go differs.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import polars as pl
import pyarrow.parquet as pq
from deltalake.fs import DeltaStorageHandler
from deltalake.transaction import AddAction
from pyarrow.fs import FileSelector, FileType

# One file per partition up to this many rows: large enough for fast scans, small enough that a
# single file never holds a whole large table in the writer's memory at once.
TARGET_ROWS_PER_FILE = 2_000_000


def partition_value_string(value: Any) -> str | None:
    """Serialise a partition value the way the Delta protocol stores it."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


class TableFiles(ABC):
    """The files of one Delta table: data files we write, log entries and presence checks.

    ``LocalFiles`` works on a folder; ``ObjectStoreFiles`` on an object-store URI with the
    lakehouse's storage options. Both write the same Parquet files with the same statistics.
    """

    #: Files written at once: local writes are CPU-bound, object-store ones wait on the network.
    concurrency = os.cpu_count() or 1

    def write_frame(
        self,
        frame: pl.DataFrame,
        partition_by: tuple[str, ...],
        *,
        rows_per_file: int = TARGET_ROWS_PER_FILE,
    ) -> list[AddAction]:
        """Write ``frame`` as Parquet files, one folder per partition.

        Partition columns are not stored in the files (the Delta log carries their values).
        Files are written concurrently (polars releases the GIL while encoding). Returns one
        ``AddAction`` per file, with paths relative to the table root, in a deterministic order.
        """
        if partition_by:
            parts = frame.partition_by(list(partition_by), as_dict=True, include_key=False)
            groups = [
                (
                    {c: partition_value_string(v) for c, v in zip(partition_by, key, strict=True)},
                    part,
                )
                for key, part in parts.items()
            ]
        else:
            groups = [({}, frame)]
        jobs = [
            (values, part.slice(offset, rows_per_file))
            for values, part in groups
            for offset in range(0, max(len(part), 1), rows_per_file)
        ]
        with ThreadPoolExecutor(max_workers=min(len(jobs), self.concurrency)) as pool:
            return list(pool.map(lambda job: self._write_job(*job), jobs))

    def _write_job(self, values: dict[str, str | None], chunk: pl.DataFrame) -> AddAction:
        folder = "/".join(f"{quote(c, safe='')}={_escape(v)}" for c, v in values.items())
        relative = f"{folder}/" if folder else ""
        relative += f"part-{uuid.uuid4().hex}.zstd.parquet"
        size, metadata = self._write_file(relative, chunk)
        return AddAction(
            path=relative,
            size=size,
            partition_values=dict(values),
            modification_time=int(time.time() * 1000),
            data_change=True,
            stats=json.dumps(file_statistics(metadata)),
        )

    @abstractmethod
    def _write_file(self, relative: str, chunk: pl.DataFrame) -> tuple[int, pq.FileMetaData]:
        """Write ``chunk`` at ``relative``; return the file's size and Parquet footer."""

    @abstractmethod
    def read(self, relative: str) -> bytes | None:
        """The bytes of the file at ``relative`` (e.g. a log entry), or None if there is none."""

    @abstractmethod
    def missing(self, uris: list[str]) -> list[str]:
        """Those of the data files ``uris`` (as ``DeltaTable.file_uris()`` gives them) that do
        not exist."""

    def log_entry(self, version: int) -> bytes | None:
        """The JSON commit of ``version`` in the Delta log, or None if it does not exist."""
        return self.read(f"_delta_log/{version:020d}.json")


class LocalFiles(TableFiles):
    """A table in a local folder: polars writes straight to disk."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _write_file(self, relative: str, chunk: pl.DataFrame) -> tuple[int, pq.FileMetaData]:
        target = self.root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        chunk.write_parquet(target, compression="zstd", statistics=True)
        return target.stat().st_size, pq.read_metadata(target)

    def read(self, relative: str) -> bytes | None:
        try:
            return (self.root / relative).read_bytes()
        except FileNotFoundError:
            return None

    def missing(self, uris: list[str]) -> list[str]:
        return [uri for uri in uris if not Path(uri.removeprefix("file://")).exists()]


class ObjectStoreFiles(TableFiles):
    """A table on an object store (``s3://…``): polars uploads each file itself (with the same
    storage options as delta-rs), and its footer is read back with ranged requests for the
    statistics. Reads, listings and log entries go through delta-rs' object store, so one set
    of options configures everything.

    Measured on the S3 emulator (1M rows, 10 files): encoding to memory and uploading through
    delta-rs' object store costs the same as polars' direct upload plus the footer read-back.
    """

    # Uploads wait on the network: a thread per file (up to 16) overlaps encoding and upload.
    concurrency = max(16, 4 * (os.cpu_count() or 1))

    def __init__(self, uri: str, storage_options: Mapping[str, str] | None) -> None:
        self.uri = uri.rstrip("/")
        self.storage_options = dict(storage_options or {})
        self._store = DeltaStorageHandler(self.uri, self.storage_options)

    def _write_file(self, relative: str, chunk: pl.DataFrame) -> tuple[int, pq.FileMetaData]:
        chunk.write_parquet(
            f"{self.uri}/{relative}",
            compression="zstd",
            statistics=True,
            storage_options=polars_storage_options(self.storage_options),
            credential_provider=None if self.storage_options else "auto",
        )
        handle = self._store.open_input_file(relative)
        return handle.size(), pq.read_metadata(handle)

    def read(self, relative: str) -> bytes | None:
        try:
            handle = self._store.open_input_file(relative)
        except FileNotFoundError:
            return None
        return bytes(handle.read())

    def missing(self, uris: list[str]) -> list[str]:
        """One listing of the table's files rather than a request per file."""
        listed = self._store.get_file_info_selector(FileSelector("", recursive=True))
        present = {f"{self.uri}/{info.path}" for info in listed if info.type == FileType.File}
        return [uri for uri in uris if uri not in present]


def table_files(uri: str, storage_options: Mapping[str, str] | None) -> TableFiles:
    """The ``TableFiles`` for a table URI: local folder or object store."""
    if "://" in uri and not uri.startswith("file://"):
        return ObjectStoreFiles(uri, storage_options)
    return LocalFiles(Path(uri.removeprefix("file://")))


def polars_storage_options(options: Mapping[str, str] | None) -> dict[str, Any] | None:
    """delta-rs storage options as polars takes them (the same keys; ``max_retries`` an int)."""
    if not options:
        return None
    converted: dict[str, Any] = dict(options)
    if "max_retries" in converted:
        converted["max_retries"] = int(converted["max_retries"])
    return converted


def _escape(value: str | None) -> str:
    return "__HIVE_DEFAULT_PARTITION__" if value is None else quote(value, safe="")


def file_statistics(metadata: pq.FileMetaData) -> dict[str, Any]:
    """Delta ``stats`` (numRecords, minValues, maxValues, nullCount) from a Parquet footer.

    Only top-level primitive columns get min/max. A column whose min/max is unknown in any row
    group (or NaN) gets no min/max, so readers never skip a file they should read.
    """
    mins: dict[str, Any] = {}
    maxs: dict[str, Any] = {}
    nulls: dict[str, int] = {}
    schema = metadata.schema
    for index in range(metadata.num_columns):
        column = schema.column(index)
        if "." in column.path:  # nested: skip (no stats needed for our tables)
            continue
        # Parquet float statistics leave NaN out, but polars orders NaN above every number:
        # a max without the NaN would let a reader skip a file that matches `x > c`.
        skip_min_max = column.physical_type in ("FLOAT", "DOUBLE")
        lo = hi = None
        null_count = 0
        usable = True
        for rg in range(metadata.num_row_groups):
            stats = metadata.row_group(rg).column(index).statistics
            if stats is None or not stats.has_null_count:
                usable = False
                break
            null_count += stats.null_count
            if not stats.has_min_max:
                if stats.null_count != metadata.row_group(rg).num_rows:
                    usable = False
                continue
            lo = stats.min if lo is None else min(lo, stats.min)
            hi = stats.max if hi is None else max(hi, stats.max)
        if not usable:
            continue
        nulls[column.path] = null_count
        if skip_min_max:
            continue
        lo_json, hi_json = _stat_json(lo), _stat_json(hi)
        if lo_json is not None and hi_json is not None:
            mins[column.path], maxs[column.path] = lo_json, hi_json
    return {
        "numRecords": metadata.num_rows,
        "minValues": mins,
        "maxValues": maxs,
        "nullCount": nulls,
    }


def _stat_json(value: Any) -> Any:
    if value is None or isinstance(value, bytes):
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.isoformat(timespec="microseconds")
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str) and len(value) > 64:
        return None  # long strings: a truncated max would be wrong; skip rather than guess
    return value
