"""Writing frames into the landing folder in the contract's (or an overridden) file format."""

from __future__ import annotations

import io
import os
from pathlib import Path

import polars as pl

from lakehouse.sources.contract import DATE_FORMAT, PART_NAME, TIMESTAMP_FORMAT, FileFormat


def serialize(frame: pl.DataFrame, file_format: FileFormat) -> bytes:
    """File content of ``frame`` in ``file_format``; text formats get ISO ``...Z`` timestamps."""
    buffer = io.BytesIO()
    if file_format == "parquet":
        # Level 1: a quarter faster than the default for ~3 % larger files.
        frame.write_parquet(buffer, compression="zstd", compression_level=1, statistics=True)
        return buffer.getvalue()
    text = frame.with_columns(
        pl.col(pl.Datetime).dt.strftime(TIMESTAMP_FORMAT),
        pl.col(pl.Date).dt.strftime(DATE_FORMAT),
    )
    if file_format == "csv":
        text.write_csv(buffer)
    elif file_format == "jsonl":
        text.write_ndjson(buffer)
    else:
        raise ValueError(f"unknown file format {file_format!r}")
    return buffer.getvalue()


def write_frame(frame: pl.DataFrame, path: Path, file_format: FileFormat) -> Path:
    """Write ``frame`` to ``path`` atomically, replacing other ``part-*`` files of the partition.

    The file appears under its final name only when complete (hidden temp file, then rename), so
    a concurrent reader never sees half a file. Content is a pure function of the frame (no
    wall-clock times), so reruns are byte-identical. Serialising in memory first is also faster
    than polars' file sinks for the many small daily files.
    """
    content = serialize(frame, file_format)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f"{PART_NAME}.*"):
        if stale != path:  # e.g. left behind by an earlier run with another format override
            stale.unlink()
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(content)
    os.replace(tmp, path)
    return path
