"""The table catalog: every Delta table Scorehouse writes, with its explicit typed schema.

A table is addressed as ``layer.name`` and lives at ``{lakehouse_uri}/{layer}/{name}``. Its
``TableSpec`` is the contract writers are checked against: column names and polars types,
partition columns, primary key, retention and whether additive schema evolution is allowed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

import polars as pl

from lakehouse.errors import SchemaMismatchError, UnknownTableError

TIMESTAMP = pl.Datetime("us", "UTC")
"""The one timestamp type of every table: microseconds, UTC."""

# Audit-safe default: keep the log and removed data files long enough to time-travel to any
# version an audited prediction refers to (7 years for credit-risk style audits).
DEFAULT_RETENTION_DAYS = 7 * 365


@dataclass(frozen=True)
class TableSpec:
    """Contract of one Delta table.

    Attributes:
        name: ``layer.name``, e.g. ``silver.customers``.
        schema: ordered column names and polars types. Partition columns are included.
        description: one sentence for ``scorehouse tables`` and the Delta table description.
        partition_by: Hive-style partition columns (low-cardinality: dates, layers).
        primary_key: columns that identify a row; merges upsert on them, they must be non-null
            and unique within a write.
        additive_evolution: columns may be added to the catalog schema later; existing tables
            then gain them as nullable columns on the next write. Other changes always fail.
        retention_days: how long the Delta log and removed files stay (time-travel window).
        append_only: the table refuses replaces and merges (audit tables).
        version_column: for merges, a row is only updated by an incoming row whose value in
            this column is not older (late, out-of-order source records never win).
        recorded_by: ``(record table, key column)``: a row is visible to readers only once the
            record table holds its key. A write spanning several tables commits its record
            last, so the record is the commit point: rows of a write that died before it are
            never read (``Lakehouse.scan(..., unrecorded=True)`` shows them, for maintenance).
    """

    name: str
    schema: Mapping[str, pl.DataType]
    description: str
    partition_by: tuple[str, ...] = ()
    primary_key: tuple[str, ...] = ()
    additive_evolution: bool = False
    retention_days: int = DEFAULT_RETENTION_DAYS
    append_only: bool = False
    version_column: str | None = None
    recorded_by: tuple[str, str] | None = None
    _pl_schema: pl.Schema = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        layer, _, table = self.name.partition(".")
        if not layer or not table or "." in table:
            raise ValueError(f"table name must be 'layer.name', got {self.name!r}")
        object.__setattr__(self, "_pl_schema", pl.Schema(dict(self.schema)))
        named = (*self.partition_by, *self.primary_key, *filter(None, [self.version_column]))
        named += (self.recorded_by[1],) if self.recorded_by else ()
        missing = [c for c in named if c not in self._pl_schema]
        if missing:
            raise ValueError(f"{self.name}: partition/key columns {missing} are not in the schema")

    @property
    def layer(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def table(self) -> str:
        return self.name.split(".", 1)[1]

    @property
    def polars_schema(self) -> pl.Schema:
        return self._pl_schema

    @property
    def data_columns(self) -> list[str]:
        """Columns stored in the Parquet files (partition values live in the Delta log)."""
        return [c for c in self._pl_schema if c not in self.partition_by]

    def schema_without(self, *columns: str) -> pl.Schema:
        """The schema minus ``columns`` (e.g. what a step computes before it is stamped)."""
        unknown = [c for c in columns if c not in self._pl_schema]
        if unknown:
            raise KeyError(f"{self.name} has no columns {unknown}")
        return pl.Schema({c: t for c, t in self._pl_schema.items() if c not in columns})

    def table_properties(self) -> dict[str, str]:
        """Delta table properties that keep history for ``retention_days``."""
        interval = f"interval {self.retention_days} days"
        props = {
            "delta.logRetentionDuration": interval,
            "delta.deletedFileRetentionDuration": interval,
        }
        if self.append_only:
            props["delta.appendOnly"] = "true"
        return props

    def conform(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Return ``frame`` with the catalog's column order, or raise ``SchemaMismatchError``.

        Columns must match by name and type. The only coercions are the lossless ones a writer
        cannot avoid: an all-null column takes the catalog type, and a timezone-naive datetime
        is rejected rather than guessed.
        """
        expected = self._pl_schema
        missing = [c for c in expected if c not in frame.columns]
        extra = [c for c in frame.columns if c not in expected]
        problems: list[str] = []
        if missing:
            problems.append(f"missing columns {missing}")
        if extra:
            problems.append(f"unexpected columns {extra}")
        casts: list[pl.Expr] = []
        for column in (c for c in expected if c in frame.columns):
            want, got = expected[column], frame.schema[column]
            if got == want:
                continue
            if got == pl.Null:
                casts.append(pl.col(column).cast(want))
            else:
                problems.append(f"column {column!r} has type {got}, expected {want}")
        if problems:
            raise SchemaMismatchError(
                f"{self.name}: frame does not match the catalog schema ({len(frame)} rows): "
                + "; ".join(problems)
            )
        if casts:
            frame = frame.with_columns(casts)
        self._check_keys(frame)
        return frame.select(list(expected))

    def _check_keys(self, frame: pl.DataFrame) -> None:
        required = dict.fromkeys((*self.primary_key, *self.partition_by))
        for column in required:
            nulls = frame[column].null_count()
            if nulls:
                raise SchemaMismatchError(
                    f"{self.name}: key column {column!r} has {nulls} null rows (rule: not null)"
                )


class Catalog:
    """A registry of ``TableSpec`` by name."""

    def __init__(self, specs: Iterable[TableSpec] = ()) -> None:
        self._specs: dict[str, TableSpec] = {}
        for spec in specs:
            self.register(spec)

    def register(self, spec: TableSpec) -> TableSpec:
        existing = self._specs.get(spec.name)
        if existing is not None and existing != spec:
            raise ValueError(f"table {spec.name} is already registered with another spec")
        self._specs[spec.name] = spec
        return spec

    def __getitem__(self, name: str) -> TableSpec:
        try:
            return self._specs[name]
        except KeyError:
            known = ", ".join(sorted(self._specs)) or "none"
            raise UnknownTableError(f"unknown table {name!r} (catalog has: {known})") from None

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self) -> Iterator[TableSpec]:
        return iter(sorted(self._specs.values(), key=lambda s: s.name))

    def __len__(self) -> int:
        return len(self._specs)
