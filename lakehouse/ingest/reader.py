"""Landing files → bronze rows, validated against the landing contract.

A landing file is read as text first, then every column is parsed to its contract type. Each
rule that fails is reported with the file, the column, the rule and how many rows broke it, and
the whole batch is refused: bronze never receives part of a bad file.

Rules, in the order they are checked:

* file: the extension names a known format in any case (``.csv``, ``.CSV``); the file is
  readable and non-empty (a 0-byte CSV or Parquet file has lost its header or schema and is an
  error; a CSV header with no rows, or a 0-byte JSON lines file, is a delivery with no rows). A
  UTF-8 byte-order mark before a CSV or JSON lines file and CRLF line endings are accepted.
* columns: exactly the contract's columns. A missing column is refused, and so is an extra one:
  dropping it silently would hide a producer's change (a renamed column arrives as one missing
  and one extra), and carrying it in an untyped overflow column would land data no rule has
  checked and no table declares. A new column is a contract change, made in the contract.
* types: values parse to their type (dates ``YYYY-MM-DD``, timestamps ISO-8601 UTC, integers
  without a fraction).
* not null: required columns have no nulls. An empty CSV field is null, so an empty required
  field fails this rule; nullable columns may be left empty.
* ids (``LandingSource.id_columns``): no empty strings, no null literals (``NULL``, ``N/A``,
  ``null``, ``None``, … in any case), no leading or trailing whitespace, no control characters
  (NUL, tab, newline) and no invisible format characters (zero-width space, BOM): each of these
  looks like an id but would start a new customer in silver or never join.
* numbers: float columns are finite (no NaN, ±inf) unless the contract allows it; every numeric
  column lies inside its bounds (default ``>= 0``).
* time: timestamps and dates lie before the end of the delivery day plus the contract's
  ``future_tolerance`` (except ``future_columns``): a row stamped years ahead would otherwise
  win every later merge as the "latest" version.
* vocabulary: categorical columns stay inside their vocabulary.
* unique key: the source key is unique within the file (and within the day's files).

Lineage: every row gets ``_batch_id = "<feed>:<YYYY-MM-DD>:<sha256 prefix of the file>"``
(``lakehouse.ingest.tables.lineage_day`` reads the landing day back from it).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import polars as pl

from lakehouse.catalog import TIMESTAMP
from lakehouse.errors import LakehouseError
from lakehouse.sources.contract import (
    DATE_FORMAT,
    FILE_FORMATS,
    PART_NAME,
    TIMESTAMP_FORMAT,
    LandingSource,
    file_format_of,
    list_landing_files,
    partition_date,
    partition_dir,
    unrecognized_files,
)

NULL_LITERALS = ("null", "none", "nil", "nan", "n/a", "na", "#n/a", "undefined")
"""Text that spreadsheets and exporters write for "no value"; never an id (compared lowercased)."""
UTF8_BOM = b"\xef\xbb\xbf"

# (what the broken rows are, rule name, test) for identifier columns.
ID_RULES: tuple[tuple[str, str, Callable[[pl.Series], pl.Series]], ...] = (
    ("are empty strings", "id not empty", lambda ids: ids == ""),
    (
        "are null literals",
        "id not a null literal",
        lambda ids: ids.str.to_lowercase().is_in(NULL_LITERALS),
    ),
    (
        "have leading or trailing whitespace",
        "id without surrounding whitespace",
        lambda ids: ids.str.contains(r"^\s|\s$"),
    ),
    (
        "contain control characters",
        "id without control characters",
        lambda ids: ids.str.contains(r"\p{Cc}"),
    ),
    (
        "contain zero-width or other invisible characters",
        "id without invisible characters",
        lambda ids: ids.str.contains(r"\p{Cf}"),
    ),
)


class LandingFileError(LakehouseError):
    """A landing file broke the contract; the message names file, column, rule and row count."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(f"landing file {path} rejected: " + "; ".join(problems))


@dataclass(frozen=True)
class LandingBatch:
    """The validated rows of one source for one day, ready for bronze."""

    source: str
    day: date
    frame: pl.DataFrame
    files: list[Path]


def read_batch(landing_dir: Path, source: LandingSource, day: date) -> LandingBatch:
    """Validate and read every landing file of ``source`` for ``day``.

    Raises ``LandingFileError`` for the first bad file (or a partition holding only files of an
    unknown format), and ``FileNotFoundError`` when the day was not delivered at all (no
    partition folder, no file), so a missing delivery is never taken for an empty one.
    """
    files = list_landing_files(landing_dir, source.name, day)
    if not files:
        _refuse_unrecognized(landing_dir, source, day)
        raise FileNotFoundError(
            f"no landing file for source {source.name!r} on {day} under {landing_dir}"
        )
    ingested_at = datetime.now(UTC)
    frames = []
    for path in files:
        data = path.read_bytes()
        frame = _validated(path, data, source, day)
        frames.append(_with_audit(frame, path, data, day, ingested_at))
    frame = pl.concat(frames) if len(frames) > 1 else frames[0]
    _check_unique(frame, source, files[0] if len(files) == 1 else landing_dir)
    return LandingBatch(source.name, day, frame, files)


def read_landing(path: Path, source: LandingSource, day: date | None = None) -> pl.DataFrame:
    """Read one landing file into the contract columns and types, or raise ``LandingFileError``.

    ``day`` is the delivery day the time rule compares against; by default the file's
    ``date=YYYY-MM-DD`` partition folder.
    """
    return _validated(path, path.read_bytes(), source, day or _delivery_day(path))


def _validated(path: Path, data: bytes, source: LandingSource, day: date) -> pl.DataFrame:
    raw = _read_text(path, data, source)
    _check_columns(raw, source, path)
    parsed = raw.select(_parse(c, raw.schema[c], dtype) for c, dtype in source.columns.items())
    problems = [
        problem
        for column in source.columns
        for problem in _column_problems(source, column, raw[column], parsed[column], day)
    ]
    if problems:
        raise LandingFileError(path, problems)
    _check_unique(parsed, source, path)
    return parsed


def _refuse_unrecognized(landing_dir: Path, source: LandingSource, day: date) -> None:
    strays = unrecognized_files(landing_dir, source, day)
    if strays:
        expected = f"{PART_NAME}.{{{'|'.join(FILE_FORMATS)}}}"
        raise LandingFileError(
            partition_dir(landing_dir, source, day),
            [
                f"no file with a known format: found {[p.name for p in strays]}, expected a "
                f"name like {expected} (extension in any case) (rule: file name)"
            ],
        )


def _delivery_day(path: Path) -> date:
    try:
        return partition_date(path)
    except ValueError:
        raise LandingFileError(
            path, ["not inside a date=YYYY-MM-DD partition folder (rule: partition layout)"]
        ) from None


def _read_text(path: Path, data: bytes, source: LandingSource) -> pl.DataFrame:
    """All columns as strings (Parquet keeps its types), so bad values can be counted per rule."""
    fmt = file_format_of(path)
    if fmt is None:
        raise LandingFileError(
            path, [f"unsupported file format {path.suffix!r}; expected {FILE_FORMATS}"]
        )
    if fmt != "parquet":
        data = data.removeprefix(UTF8_BOM)  # Excel and Windows tools write one before CSV
    if not data:
        if fmt == "jsonl":  # JSON lines has no header: zero records is zero bytes
            return pl.DataFrame(schema=dict.fromkeys(source.columns, pl.String))
        raise LandingFileError(path, ["file is empty (0 bytes) (rule: non-empty file)"])
    try:
        if fmt == "parquet":
            return pl.read_parquet(io.BytesIO(data))
        if fmt == "csv":
            return pl.read_csv(io.BytesIO(data), infer_schema=False, raise_if_empty=False)
        frame = pl.read_ndjson(io.BytesIO(data), infer_schema_length=None)
        return frame.with_columns(pl.all().cast(pl.String))
    except Exception as exc:  # polars raises several error types for truncated/corrupt files
        raise LandingFileError(
            path, [f"file is corrupt or truncated ({type(exc).__name__}: {exc})"]
        ) from exc


def _check_columns(raw: pl.DataFrame, source: LandingSource, path: Path) -> None:
    missing = [c for c in source.columns if c not in raw.columns]
    extra = [c for c in raw.columns if c not in source.columns]
    problems = []
    if missing:
        problems.append(f"missing columns {missing} (rule: contract columns)")
    if extra:
        problems.append(f"unexpected columns {extra} (rule: no extra columns)")
    if problems:
        raise LandingFileError(path, problems)


def _parse(column: str, found: pl.DataType, dtype: pl.DataType) -> pl.Expr:
    if found == dtype:
        return pl.col(column)
    text = pl.col(column).cast(pl.String)
    if dtype == TIMESTAMP:
        parsed = text.str.to_datetime(
            TIMESTAMP_FORMAT, time_unit="us", time_zone="UTC", strict=False
        )
    elif dtype == pl.Date():
        parsed = text.str.to_date(DATE_FORMAT, strict=False)
    elif dtype.is_numeric():
        # Strict text casts: "12.0" is not an integer count, so it is refused, not truncated.
        parsed = text.str.strip_chars().cast(dtype, strict=False)
    else:
        parsed = text
    return pl.when(pl.col(column).is_null()).then(None).otherwise(parsed).cast(dtype).alias(column)


def _column_problems(
    source: LandingSource, column: str, given: pl.Series, value: pl.Series, day: date
) -> list[str]:
    """Every rule one parsed column breaks (type errors hide the rules that need a value)."""
    unparseable = given.is_not_null() & value.is_null()
    if unparseable.any():
        example = given.filter(unparseable)[0]
        return [
            f"column {column!r}: {int(unparseable.sum())} rows do not parse as {value.dtype} "
            f"(rule: type; e.g. {example!r})"
        ]
    problems = []
    if column not in source.nullable and (nulls := value.null_count()):
        problems.append(f"column {column!r}: {nulls} null rows (rule: not null)")
    present = value.drop_nulls()
    if column in source.id_columns:
        problems += _id_problems(column, present)
    if value.dtype.is_numeric():
        problems += _number_problems(source, column, present)
    if value.dtype.is_temporal() and column not in source.future_columns:
        problems += _future_problems(source, column, present, day)
    allowed = source.categories.get(column)
    if allowed is not None and (outside := int((~present.is_in(list(allowed))).sum())):
        problems.append(
            f"column {column!r}: {outside} rows outside {list(allowed)} (rule: vocabulary)"
        )
    return problems


def _id_problems(column: str, ids: pl.Series) -> list[str]:
    problems = []
    for what, rule, test in ID_RULES:
        broken = ids.filter(test(ids))
        if len(broken):
            problems.append(
                f"column {column!r}: {len(broken)} rows {what} (rule: {rule}; e.g. {broken[0]!r})"
            )
    return problems


def _number_problems(source: LandingSource, column: str, numbers: pl.Series) -> list[str]:
    problems = []
    if numbers.dtype.is_float():
        finite = numbers.is_finite()
        if column not in source.non_finite and not finite.all():
            example = numbers.filter(~finite)[0]
            problems.append(
                f"column {column!r}: {int((~finite).sum())} rows are NaN or infinite "
                f"(rule: finite; e.g. {example!r})"
            )
        numbers = numbers.filter(finite)  # NaN sorts above every number: not "above high"
    low, high = source.bounds_of(column)
    if low is not None and (below := int((numbers < low).sum())):
        what = "negative rows" if low == 0 else f"rows below {_number(low)}"
        problems.append(f"column {column!r}: {below} {what} (rule: >= {_number(low)})")
    if high is not None and (above := int((numbers > high).sum())):
        problems.append(
            f"column {column!r}: {above} rows above {_number(high)} "
            f"(rule: <= {_number(high)}; e.g. {numbers.max()!r})"
        )
    return problems


def _future_problems(source: LandingSource, column: str, stamps: pl.Series, day: date) -> list[str]:
    """Values at or after the end of the delivery day plus the tolerance."""
    limit = datetime.combine(day + timedelta(days=1), time(), UTC) + source.future_tolerance
    instants = stamps.cast(TIMESTAMP) if stamps.dtype == pl.Date() else stamps
    late = stamps.filter(instants >= limit)
    if not len(late):
        return []
    return [
        f"column {column!r}: {len(late)} rows at or after {limit.strftime(TIMESTAMP_FORMAT)} "
        f"(rule: not after delivery day {day} + {_duration(source.future_tolerance)}; "
        f"e.g. {late.sort()[-1]!s})"
    ]


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def _duration(value: timedelta) -> str:
    if value.seconds == 0 and value.microseconds == 0:
        return f"{value.days} day" + ("" if value.days == 1 else "s")
    return str(value)


def _check_unique(frame: pl.DataFrame, source: LandingSource, where: Path) -> None:
    duplicated = int(frame.select(source.key).is_duplicated().sum())
    if duplicated:
        raise LandingFileError(
            where, [f"key {list(source.key)}: {duplicated} rows share a key (rule: unique key)"]
        )


def _with_audit(
    frame: pl.DataFrame, path: Path, data: bytes, day: date, ingested_at: datetime
) -> pl.DataFrame:
    digest = hashlib.sha256(data).hexdigest()[:16]
    return frame.with_columns(
        pl.lit(f"{path.parent.parent.name}/{path.parent.name}/{path.name}").alias("_source_file"),
        pl.lit(f"{path.parent.parent.name}:{day.isoformat()}:{digest}").alias("_batch_id"),
        pl.lit(ingested_at, dtype=TIMESTAMP).alias("_ingested_at"),
        pl.lit(day, dtype=pl.Date()).alias("_batch_date"),
    )
