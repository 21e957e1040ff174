"""Landing files → bronze rows, validated against the landing contract.

A landing file is read as text first, then every column is parsed to its contract type. Each
rule that fails is reported with the file, the column, the rule and how many rows broke it, and
the whole batch is refused: bronze never receives part of a bad file.

Rules: the file is readable and non-empty (a 0-byte CSV or Parquet file has lost its header or
schema and is an error; a CSV header with no rows, or a 0-byte JSON lines file, is a delivery
with no rows), every contract column is present, values parse to their type (dates as
``YYYY-MM-DD``, timestamps as ISO-8601 UTC), required columns have no nulls, categorical
columns stay inside their vocabulary, numeric columns are not negative, and the source key is
unique within the file.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl

from lakehouse.catalog import TIMESTAMP
from lakehouse.errors import LakehouseError
from lakehouse.sources.contract import (
    DATE_FORMAT,
    TIMESTAMP_FORMAT,
    LandingSource,
    list_landing_files,
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

    Raises ``LandingFileError`` for the first bad file, and ``FileNotFoundError`` when the day
    was not delivered at all (no file), so a missing delivery is never taken for an empty one.
    """
    files = list_landing_files(landing_dir, source.name, day)
    if not files:
        raise FileNotFoundError(
            f"no landing file for source {source.name!r} on {day} under {landing_dir}"
        )
    ingested_at = datetime.now(UTC)
    frames = [_with_audit(read_landing(path, source), path, day, ingested_at) for path in files]
    frame = pl.concat(frames) if len(frames) > 1 else frames[0]
    _check_unique(frame, source, files[0] if len(files) == 1 else landing_dir)
    return LandingBatch(source.name, day, frame, files)


def read_landing(path: Path, source: LandingSource) -> pl.DataFrame:
    """Read one landing file into the contract columns and types, or raise ``LandingFileError``."""
    raw = _read_text(path, source)
    problems: list[str] = []
    missing = [c for c in source.columns if c not in raw.columns]
    if missing:
        raise LandingFileError(path, [f"missing columns {missing} (rule: contract columns)"])
    parsed = raw.select(_parse(c, raw.schema[c], dtype) for c, dtype in source.columns.items())
    for column, dtype in source.columns.items():
        given, value = raw[column], parsed[column]
        unparseable = int((given.is_not_null() & value.is_null()).sum())
        if unparseable:
            example = given.filter(given.is_not_null() & value.is_null())[0]
            problems.append(
                f"column {column!r}: {unparseable} rows do not parse as {dtype} "
                f"(rule: type; e.g. {example!r})"
            )
            continue
        if column not in source.nullable and (nulls := value.null_count()):
            problems.append(f"column {column!r}: {nulls} null rows (rule: not null)")
        if dtype.is_numeric() and (negative := int((value < 0).sum())):
            problems.append(f"column {column!r}: {negative} negative rows (rule: >= 0)")
        allowed = source.categories.get(column)
        if allowed is not None:
            outside = int((value.is_not_null() & ~value.is_in(list(allowed))).sum())
            if outside:
                problems.append(
                    f"column {column!r}: {outside} rows outside {list(allowed)} (rule: vocabulary)"
                )
    if problems:
        raise LandingFileError(path, problems)
    _check_unique(parsed, source, path)
    return parsed


def _read_text(path: Path, source: LandingSource) -> pl.DataFrame:
    """All columns as strings (Parquet keeps its types), so bad values can be counted per rule."""
    try:
        fmt = path.suffix.lstrip(".")
        if path.stat().st_size == 0:
            if fmt == "jsonl":  # JSON lines has no header: zero records is zero bytes
                return pl.DataFrame(schema=dict.fromkeys(source.columns, pl.String))
            raise LandingFileError(path, ["file is empty (0 bytes) (rule: non-empty file)"])
        if fmt == "parquet":
            return pl.read_parquet(path)
        if fmt == "csv":
            return pl.read_csv(path, infer_schema=False, raise_if_empty=False)
        if fmt == "jsonl":
            frame = pl.read_ndjson(path, infer_schema_length=None)
            return frame.with_columns(pl.all().cast(pl.String))
    except LandingFileError:
        raise
    except Exception as exc:  # polars raises several error types for truncated/corrupt files
        raise LandingFileError(
            path, [f"file is corrupt or truncated ({type(exc).__name__}: {exc})"]
        ) from exc
    raise LandingFileError(path, [f"unsupported file format {path.suffix!r}"])


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


def _check_unique(frame: pl.DataFrame, source: LandingSource, where: Path) -> None:
    duplicated = int(frame.select(source.key).is_duplicated().sum())
    if duplicated:
        raise LandingFileError(
            where, [f"key {list(source.key)}: {duplicated} rows share a key (rule: unique key)"]
        )


def _with_audit(frame: pl.DataFrame, path: Path, day: date, ingested_at: datetime) -> pl.DataFrame:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return frame.with_columns(
        pl.lit(f"{path.parent.parent.name}/{path.parent.name}/{path.name}").alias("_source_file"),
        pl.lit(f"{path.parent.parent.name}:{day.isoformat()}:{digest}").alias("_batch_id"),
        pl.lit(ingested_at, dtype=TIMESTAMP).alias("_ingested_at"),
        pl.lit(day, dtype=pl.Date()).alias("_batch_date"),
    )
