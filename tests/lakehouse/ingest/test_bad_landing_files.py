"""Every kind of bad landing file is refused with file, column, rule and row count, and the
bronze table keeps its previous version untouched."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from lakehouse.catalog import Catalog
from lakehouse.ingest.reader import LandingFileError, read_batch
from lakehouse.ingest.saas import SAAS
from lakehouse.sources.contract import landing_path
from lakehouse.sources.saas.contract import SAAS_FEEDS
from lakehouse.storage import Lakehouse

from .conftest import DAY, as_text, payment_rows, usage_rows, write

USAGE, PAYMENTS = SAAS_FEEDS["usage"], SAAS_FEEDS["payments"]


def test_valid_files_read_with_contract_types_and_lineage(tmp_path: Path) -> None:
    write(tmp_path, "usage", usage_rows())
    write(tmp_path, "payments", payment_rows())
    usage = read_batch(tmp_path, USAGE, DAY).frame
    payments = read_batch(tmp_path, PAYMENTS, DAY).frame
    assert usage.drop("_source_file", "_batch_id", "_ingested_at", "_batch_date").equals(
        usage_rows()
    )
    assert payments.select(list(PAYMENTS.columns)).equals(payment_rows())
    assert payments["_source_file"][0] == "payments/date=2025-03-01/part-00000.jsonl"
    assert payments["_batch_id"][0].startswith("payments:2025-03-01:")


def _rejected(tmp_path: Path, source: str) -> str:
    with pytest.raises(LandingFileError) as info:
        read_batch(tmp_path, SAAS_FEEDS[source], DAY)
    message = str(info.value)
    assert str(landing_path(tmp_path, SAAS_FEEDS[source], DAY)) in message
    return message


def test_missing_column(tmp_path: Path) -> None:
    write(tmp_path, "payments", payment_rows().drop("amount"))
    assert "missing columns ['amount'] (rule: contract columns)" in _rejected(tmp_path, "payments")


def test_wrong_type(tmp_path: Path) -> None:
    frame = as_text(payment_rows()).with_columns(
        pl.when(pl.col("payment_id") == "P1")
        .then(pl.lit("ninety"))
        .otherwise(pl.col("amount").cast(pl.String))
        .alias("amount")
    )
    path = landing_path(tmp_path, SAAS_FEEDS["payments"], DAY)
    path.parent.mkdir(parents=True)
    frame.write_ndjson(path)
    message = _rejected(tmp_path, "payments")
    assert "column 'amount': 1 rows do not parse as Float64 (rule: type; e.g. 'ninety')" in message


def test_unparseable_dates(tmp_path: Path) -> None:
    frame = as_text(payment_rows()).with_columns(pl.lit("31/02/2025 9am").alias("attempted_at"))
    path = landing_path(tmp_path, SAAS_FEEDS["payments"], DAY)
    path.parent.mkdir(parents=True)
    frame.write_ndjson(path)
    message = _rejected(tmp_path, "payments")
    assert "column 'attempted_at': 3 rows do not parse as Datetime" in message


def test_duplicate_keys(tmp_path: Path) -> None:
    write(tmp_path, "usage", pl.concat([usage_rows(3), usage_rows(2)]))
    message = _rejected(tmp_path, "usage")
    assert "key ['customer_id', 'usage_date']: 4 rows share a key (rule: unique key)" in message


def test_negative_amounts(tmp_path: Path) -> None:
    write(tmp_path, "payments", payment_rows().with_columns(pl.lit(-5.0).alias("amount")))
    assert "column 'amount': 3 negative rows (rule: >= 0)" in _rejected(tmp_path, "payments")


def test_values_outside_vocabulary_and_nulls(tmp_path: Path) -> None:
    frame = payment_rows().with_columns(
        pl.lit("maybe").alias("status"), pl.lit(None, dtype=pl.String).alias("customer_id")
    )
    write(tmp_path, "payments", frame)
    message = _rejected(tmp_path, "payments")
    assert "column 'customer_id': 3 null rows (rule: not null)" in message
    assert "column 'status': 3 rows outside ['succeeded', 'failed'] (rule: vocabulary)" in message


@pytest.mark.parametrize("source", ["tickets", "usage"])
def test_empty_file(tmp_path: Path, source: str) -> None:
    path = landing_path(tmp_path, SAAS_FEEDS[source], DAY)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")
    assert "file is empty (0 bytes) (rule: non-empty file)" in _rejected(tmp_path, source)


def test_zero_byte_json_lines_is_an_empty_delivery(tmp_path: Path) -> None:
    path = landing_path(tmp_path, SAAS_FEEDS["payments"], DAY)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")
    frame = read_batch(tmp_path, PAYMENTS, DAY).frame
    assert frame.is_empty()
    assert frame.select(list(PAYMENTS.columns)).schema == PAYMENTS.schema


def test_header_only_csv_is_an_empty_delivery(tmp_path: Path) -> None:
    tickets = SAAS_FEEDS["tickets"]
    path = landing_path(tmp_path, SAAS_FEEDS["tickets"], DAY)
    path.parent.mkdir(parents=True)
    path.write_text(",".join(tickets.columns) + "\n")
    assert read_batch(tmp_path, tickets, DAY).frame.is_empty()


def test_truncated_parquet(tmp_path: Path) -> None:
    path = write(tmp_path, "usage", usage_rows(100))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert "file is corrupt or truncated" in _rejected(tmp_path, "usage")


def test_missing_delivery_is_not_an_empty_one(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no landing file for source 'usage' on 2025-03-01"):
        read_batch(tmp_path, USAGE, DAY)


def test_bad_file_leaves_bronze_at_its_previous_version(tmp_path: Path) -> None:
    lake = Lakehouse(tmp_path / "lake", catalog=Catalog(SAAS.tables()))
    write(tmp_path / "landing", "usage", usage_rows())
    good = read_batch(tmp_path / "landing", USAGE, DAY).frame
    lake.replace("bronze.usage", good, partition={"_batch_date": DAY})
    before = lake.read("bronze.usage")

    write(tmp_path / "landing", "usage", usage_rows().with_columns(pl.lit(-1).alias("sessions")))
    with pytest.raises(LandingFileError, match="negative"):
        batch = read_batch(tmp_path / "landing", USAGE, DAY)
        lake.replace("bronze.usage", batch.frame, partition={"_batch_date": DAY})
    assert lake.version("bronze.usage") == 0
    assert lake.read("bronze.usage").equals(before)
