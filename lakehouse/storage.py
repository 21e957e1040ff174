"""The lakehouse: typed, versioned Delta tables read and written through one small API.

Every write is one Delta commit: it either becomes a new table version in full or leaves the
table as it was. Writes are checked against the catalog schema first, and every commit carries
metadata (operation, row count, code version, Dagster run id, asset key, partition).

    lake = Lakehouse(catalog=catalog)
    lake.append("bronze.usage", frame, commit=CommitInfo(run_id=...))
    lake.replace("bronze.usage", frame, partition={"_batch_date": day})
    lake.merge("silver.customers", frame)
    lake.replace_keys("silver.tickets", rebuilt, keys)  # rows of those keys become rebuilt's
    lake.scan("silver.customers", version=3).filter(...).collect()
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import polars as pl
from deltalake import DeltaTable, Field, Schema, write_deltalake
from deltalake.exceptions import TableNotFoundError as DeltaTableNotFoundError
from deltalake.transaction import (
    AddAction,
    CommitProperties,
    RemoveAction,
    create_table_with_add_actions,
)

from lakehouse import config
from lakehouse._files import partition_value_string, write_data_files
from lakehouse.catalog import Catalog, TableSpec
from lakehouse.commit import CommitInfo
from lakehouse.errors import (
    LakehouseError,
    SchemaMismatchError,
    TableNotFoundError,
    VersionNotAvailableError,
)


@dataclass(frozen=True)
class WriteResult:
    """Outcome of one write: the table version it created and the rows it wrote."""

    table: str
    version: int
    rows: int
    operation: str


class StagedAppend:
    """Files written now, committed as one append when the ``with`` block ends without error."""

    def __init__(self, lake: Lakehouse, spec: TableSpec, commit: CommitInfo | None) -> None:
        self._lake, self._spec, self._commit = lake, spec, commit
        self._actions: list[AddAction] = []
        self._pending: list[pl.DataFrame] = []  # object stores: delta-rs writes on commit
        self.rows = 0
        self.result: WriteResult | None = None

    def write(self, frame: pl.DataFrame) -> None:
        conformed = self._spec.conform(frame)
        if not len(conformed):
            return
        self.rows += len(conformed)
        if self._lake._remote:
            self._pending.append(conformed)
        else:
            path = Path(self._lake.table_uri(self._spec.name))
            self._actions += write_data_files(conformed, path, self._spec.partition_by)

    def __enter__(self) -> StagedAppend:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is not None:
            return  # written files stay unreferenced; vacuum removes them
        if self._lake._remote:
            frame = pl.concat(self._pending) if self._pending else _empty(self._spec)
            self.result = self._lake.append(self._spec.name, frame, commit=self._commit)
        else:
            self.result = self._lake._commit_actions(
                self._spec, self._actions, self.rows, "append", self._commit
            )


class Lakehouse:
    """Delta tables of a catalog under one root URI (``SCOREHOUSE_LAKEHOUSE_URI``).

    The catalog is always given: the storage layer knows no project tables of its own.
    """

    def __init__(
        self,
        uri: str | Path | None = None,
        *,
        catalog: Catalog,
        storage_options: dict[str, str] | None = None,
    ) -> None:
        self.uri = str(uri) if uri is not None else config.lakehouse_uri()
        self.catalog = catalog
        self.storage_options = (
            storage_options if storage_options is not None else config.storage_options()
        )
        self._remote = config.is_remote(self.uri)

    # ----------------------------------------------------------------------------- locations
    def table_uri(self, name: str) -> str:
        spec = self.catalog[name]
        return f"{self.uri.rstrip('/')}/{spec.layer}/{spec.table}"

    def exists(self, name: str) -> bool:
        return DeltaTable.is_deltatable(self.table_uri(name), storage_options=self.storage_options)

    def delta_table(self, name: str, version: int | None = None) -> DeltaTable:
        """The ``DeltaTable`` of ``name`` (latest, or at ``version``)."""
        uri = self.table_uri(name)
        try:
            return DeltaTable(uri, version=version, storage_options=self.storage_options)
        except DeltaTableNotFoundError:
            raise TableNotFoundError(f"{name}: no Delta table at {uri} (never written)") from None
        except Exception as exc:  # delta-rs raises generic errors for missing log versions
            if version is not None:
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
        return self._commit_files(spec, frame, "append", commit)

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
            return self._commit_files(spec, frame, "replace", commit, partition=partition)
        if predicate is None:
            return self._commit_files(spec, frame, "overwrite", commit, partition={})
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
        frame, as they are in every catalog table).
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
        if not self.exists(name):
            return self._commit_files(spec, frame, "merge", commit)
        dt = self._writable(spec, self.delta_table(name))
        if frame.is_empty():
            return WriteResult(spec.name, dt.version(), 0, "merge")
        conditions = [f"t.`{c}` = s.`{c}`" for c in spec.primary_key]
        conditions += self._partition_pruning(spec, frame)
        merger = dt.merge(
            frame.to_arrow(),
            predicate=" AND ".join(conditions),
            source_alias="s",
            target_alias="t",
            commit_properties=self._commit_properties(commit, "merge", len(frame)),
        )
        newer = (
            f"s.`{spec.version_column}` >= t.`{spec.version_column}`"
            if spec.version_column
            else None
        )
        merger.when_matched_update_all(predicate=newer).when_not_matched_insert_all().execute()
        return WriteResult(spec.name, dt.version(), len(frame), "merge")

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
        ``frame`` must have its key in ``keys``. One commit.
        """
        spec = self.catalog[name]
        if spec.append_only:
            raise LakehouseError(f"{name} is append-only: replace_keys is refused")
        if not spec.primary_key:
            raise LakehouseError(f"{name} has no primary key: replace_keys needs one")
        frame, keys = self._keyed(spec, frame, keys)
        if not self.exists(name):
            return self._commit_files(spec, frame, "replace_keys", commit)
        dt = self._writable(spec, self.delta_table(name))
        gone = keys.join(frame.select(spec.primary_key), on=list(spec.primary_key), how="anti")
        source = pl.concat(
            [
                frame.with_columns(pl.lit(True).alias(_KEEP)),
                gone.with_columns(pl.lit(False).alias(_KEEP)),
            ],
            how="diagonal",
        )
        if source.is_empty():
            return WriteResult(spec.name, dt.version(), 0, "replace_keys")
        conditions = [f"t.`{c}` = s.`{c}`" for c in spec.primary_key]
        conditions += self._partition_pruning(spec, source)
        columns = {c: f"s.`{c}`" for c in spec.polars_schema}
        (
            dt.merge(
                source.to_arrow(),
                predicate=" AND ".join(conditions),
                source_alias="s",
                target_alias="t",
                commit_properties=self._commit_properties(commit, "replace_keys", len(frame)),
            )
            .when_matched_delete(predicate=f"NOT s.`{_KEEP}`")
            .when_matched_update(updates=columns)
            .when_not_matched_insert(updates=columns, predicate=f"s.`{_KEEP}`")
            .execute()
        )
        return WriteResult(spec.name, dt.version(), len(frame), "replace_keys")

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
        self, name: str, *, version: int | None = None, as_of: datetime | None = None
    ) -> pl.LazyFrame:
        """Lazy frame of the table (latest, at ``version``, or as of a timestamp).

        Filters on partition columns prune partitions; filters on other columns skip files by
        their min/max statistics. A version whose files were vacuumed raises
        ``VersionNotAvailableError`` instead of returning partial data.
        """
        if version is not None and as_of is not None:
            raise ValueError("pass either version or as_of, not both")
        dt = self.delta_table(name)
        if as_of is not None:
            try:
                dt.load_as_version(as_of)
            except Exception as exc:
                raise VersionNotAvailableError(f"{name}: no version as of {as_of} ({exc})") from exc
        elif version is not None:
            dt = self.delta_table(name, version=version)
        if version is not None or as_of is not None:
            self._check_files_present(name, dt)
        return pl.scan_delta(dt, storage_options=self.storage_options)

    def read(
        self,
        name: str,
        *,
        version: int | None = None,
        as_of: datetime | None = None,
        columns: list[str] | None = None,
        where: pl.Expr | None = None,
    ) -> pl.DataFrame:
        """Eager read of the table; see ``scan`` for versions and pruning."""
        lazy = self.scan(name, version=version, as_of=as_of)
        if where is not None:
            lazy = lazy.filter(where)
        if columns is not None:
            lazy = lazy.select(columns)
        return lazy.collect()

    def history(self, name: str, limit: int | None = None) -> list[dict[str, Any]]:
        """Commits of the table, newest first, with our commit metadata."""
        return self.delta_table(name).history(limit)

    def row_count(self, name: str, version: int | None = None) -> int:
        """Rows in the table at ``version`` from the log's file statistics (no data read)."""
        actions = pl.DataFrame(
            self.delta_table(name, version=version).get_add_actions(flatten=True)
        )
        return int(actions["num_records"].sum()) if len(actions) else 0

    # ------------------------------------------------------------------------------ internals
    def _commit_properties(
        self, commit: CommitInfo | None, operation: str, rows: int
    ) -> CommitProperties:
        return CommitProperties(
            custom_metadata=(commit or CommitInfo()).to_metadata(operation, rows)
        )

    def _writable(self, spec: TableSpec, dt: DeltaTable) -> DeltaTable:
        """The existing table, with its schema brought to the catalog's (additive only)."""
        expected = _delta_schema(spec)
        current = {f.name: f for f in dt.schema().fields}
        wanted = {f.name: f for f in expected.fields}
        changed = [
            f"{n}: table has {current[n].type}, catalog has {wanted[n].type}"
            for n in current
            if n in wanted and str(current[n].type) != str(wanted[n].type)
        ]
        dropped = [n for n in current if n not in wanted]
        added = [wanted[n] for n in wanted if n not in current]
        if changed or dropped or (added and not spec.additive_evolution):
            problems = changed + [f"{n}: in the table, not in the catalog" for n in dropped]
            problems += [f"{f.name}: new in the catalog" for f in added]
            raise SchemaMismatchError(
                f"{spec.name}: table schema differs from the catalog and only additive evolution "
                f"{'is' if spec.additive_evolution else 'is not'} allowed: " + "; ".join(problems)
            )
        if added:
            dt.alter.add_columns([Field(f.name, f.type, nullable=True) for f in added])
        return dt

    def _commit_files(
        self,
        spec: TableSpec,
        frame: pl.DataFrame,
        operation: str,
        commit: CommitInfo | None,
        *,
        partition: Mapping[str, Any] | None = None,
    ) -> WriteResult:
        """Write ``frame`` as new files and commit them in one transaction.

        ``partition=None`` appends; a mapping replaces that partition (``{}``: the whole table).
        """
        if self._remote:
            # Object stores: delta-rs writes and commits the files itself.
            properties = self._commit_properties(commit, operation, len(frame))
            mode = "append" if partition is None else "overwrite"
            return self._write_with_delta_rs(spec, frame, operation, mode, partition, properties)
        table_path = Path(self.table_uri(spec.name))
        actions = write_data_files(frame, table_path, spec.partition_by) if len(frame) else []
        return self._commit_actions(spec, actions, len(frame), operation, commit, partition)

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
        properties = self._commit_properties(commit, operation, rows)
        mode = "append" if partition is None else "overwrite"
        table_path = Path(self.table_uri(spec.name))
        if not self.exists(spec.name):
            create_table_with_add_actions(
                str(table_path),
                _delta_schema(spec),
                actions,
                mode="append",
                partition_by=list(spec.partition_by) or None,
                name=spec.name,
                description=spec.description,
                configuration=spec.table_properties(),
                storage_options=self.storage_options,
                commit_properties=properties,
            )
            return WriteResult(spec.name, 0, rows, operation)
        dt = self._writable(spec, self.delta_table(spec.name))
        filters = None
        if partition:
            filters = [
                (c, "in", [partition_value_string(v) for v in values])
                for c, values in _partition_values(partition).items()
            ]
        dt.create_write_transaction(
            list[AddAction | RemoveAction](actions),
            mode=mode,
            schema=dt.schema(),
            partition_by=list(spec.partition_by) or None,
            partition_filters=filters,
            commit_properties=properties,
        )
        dt.update_incremental()  # the transaction does not advance this handle's snapshot
        return WriteResult(spec.name, dt.version(), rows, operation)

    def _write_with_delta_rs(
        self,
        spec: TableSpec,
        frame: pl.DataFrame,
        operation: str,
        mode: str,
        partition: Mapping[str, Any] | None,
        properties: CommitProperties,
    ) -> WriteResult:
        exists = self.exists(spec.name)
        if exists:
            self._writable(spec, self.delta_table(spec.name))
        predicate = None
        if partition:
            predicate = " AND ".join(
                f"`{c}` IN ({', '.join(_sql_literal(v) for v in values)})"
                for c, values in _partition_values(partition).items()
            )
        # One call for both modes: the overloads split ``predicate`` by mode literal.
        options: dict[str, Any] = {"mode": mode, "predicate": predicate}
        write_deltalake(
            self.table_uri(spec.name),
            frame.to_arrow(),
            **options,
            partition_by=list(spec.partition_by) or None,
            name=None if exists else spec.name,
            description=None if exists else spec.description,
            configuration=None if exists else spec.table_properties(),
            storage_options=self.storage_options,
            commit_properties=properties,
        )
        return WriteResult(spec.name, self.delta_table(spec.name).version(), len(frame), operation)

    def _replace_where(
        self, spec: TableSpec, frame: pl.DataFrame, predicate: str, commit: CommitInfo | None
    ) -> WriteResult:
        if not self.exists(spec.name):
            return self._commit_files(spec, frame, "replace", commit)
        self._writable(spec, self.delta_table(spec.name))
        outside = pl.SQLContext(frame=frame).execute(
            f"SELECT COUNT(*) AS n FROM frame WHERE NOT ({predicate})", eager=True
        )["n"][0]
        if outside:
            raise LakehouseError(
                f"{spec.name}: {outside} of {len(frame)} rows do not match the replace predicate "
                f"{predicate!r} (rule: rows must lie inside what they replace); nothing written"
            )
        write_deltalake(
            self.table_uri(spec.name),
            frame.to_arrow(),
            mode="overwrite",
            predicate=predicate,
            storage_options=self.storage_options,
            commit_properties=self._commit_properties(commit, "replace", len(frame)),
        )
        return WriteResult(spec.name, self.delta_table(spec.name).version(), len(frame), "replace")

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
        if self._remote:
            return  # object stores: a vacuumed file fails the read itself with a clear 404
        missing = [uri for uri in dt.file_uris() if not Path(_local_path(uri)).exists()]
        if missing:
            raise VersionNotAvailableError(
                f"{name}: version {dt.version()} refers to {len(missing)} data files that were "
                f"vacuumed (e.g. {missing[0]}); it can no longer be read"
            )


_KEEP = "__scorehouse_keep"
"""Marker column of a ``replace_keys`` merge source: true rows are written, false keys deleted."""


def _empty(spec: TableSpec) -> pl.DataFrame:
    return pl.DataFrame(schema=spec.polars_schema)


def _partition_values(partition: Mapping[str, Any]) -> dict[str, list[Any]]:
    """``{column: value or collection of values}`` → ``{column: [values]}``."""
    return {
        column: sorted(value) if isinstance(value, list | tuple | set | frozenset) else [value]
        for column, value in partition.items()
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


def _local_path(uri: str) -> str:
    return uri.removeprefix("file://")
