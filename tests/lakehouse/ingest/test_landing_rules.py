"""Values that parse but no business produces are refused at landing, each rule named with the
file, the column and the row count: ids that are not ids, numbers outside their bounds, extra
columns, future timestamps; file names and encodings that tools really produce are accepted."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from lakehouse.ingest.reader import LandingFileError, read_batch
from lakehouse.sources.contract import LandingSource, landing_path, partition_dir
from lakehouse.sources.saas.contract import SAAS_FEEDS

from .conftest import (
    DAY,
    as_text,
    csv_text,
    customer_rows,
    payment_rows,
    ticket_rows,
    usage_rows,
    write,
    write_text,
)

CUSTOMERS = SAAS_FEEDS["customers"]


def _rejected(tmp_path: Path, source: str) -> str:
    with pytest.raises(LandingFileError) as info:
        read_batch(tmp_path, SAAS_FEEDS[source], DAY)
    message = str(info.value)
    assert str(landing_path(tmp_path, SAAS_FEEDS[source], DAY)) in message
    return message


def _with_value(frame: pl.DataFrame, column: str, row: int, value: object) -> pl.DataFrame:
    """``frame`` with one cell replaced (the column becomes the value's type)."""
    values = frame[column].to_list()
    values[row] = value
    return frame.with_columns(pl.Series(column, values, strict=False))


# --- ids ------------------------------------------------------------------------------------


def test_empty_csv_id_field_is_a_null_id(tmp_path: Path) -> None:
    text = csv_text(customer_rows()).replace("\nC0000001,", "\n,", 1)
    write_text(tmp_path, "customers", text)
    assert "column 'customer_id': 1 null rows (rule: not null)" in _rejected(tmp_path, "customers")


def test_quoted_empty_id_is_refused(tmp_path: Path) -> None:
    text = csv_text(customer_rows()).replace("\nC0000001,", '\n"",', 1)
    write_text(tmp_path, "customers", text)
    message = _rejected(tmp_path, "customers")
    assert "column 'customer_id': 1 rows are empty strings (rule: id not empty; e.g. '')" in message


@pytest.mark.parametrize("literal", ["NULL", "N/A", "null", "None", "nan", "#N/A"])
def test_null_literal_ids_are_refused(tmp_path: Path, literal: str) -> None:
    write(tmp_path, "customers", _with_value(customer_rows(), "customer_id", 1, literal))
    message = _rejected(tmp_path, "customers")
    assert (
        f"column 'customer_id': 1 rows are null literals (rule: id not a null literal; "
        f"e.g. {literal!r})"
    ) in message


@pytest.mark.parametrize(
    ("value", "what", "rule"),
    [
        (" C0000001", "have leading or trailing whitespace", "id without surrounding whitespace"),
        ("C0000001 ", "have leading or trailing whitespace", "id without surrounding whitespace"),
        (
            "C0000001\u00a0",
            "have leading or trailing whitespace",
            "id without surrounding whitespace",
        ),
        ("C000\x000001", "contain control characters", "id without control characters"),
        ("C000\t0001", "contain control characters", "id without control characters"),
        (
            "C0000001\u200b",
            "contain zero-width or other invisible characters",
            "id without invisible characters",
        ),
        (
            "\ufeffC0000001",
            "contain zero-width or other invisible characters",
            "id without invisible characters",
        ),
    ],
)
def test_malformed_ids_are_refused_in_every_format(
    tmp_path: Path, value: str, what: str, rule: str
) -> None:
    # The same defect in a CSV key, a JSON lines foreign id and a Parquet key.
    write(tmp_path, "customers", _with_value(customer_rows(), "customer_id", 1, value))
    write(tmp_path, "payments", _with_value(payment_rows(), "invoice_id", 2, value))
    write(tmp_path, "usage", _with_value(usage_rows(), "customer_id", 0, value))
    for source, column in (("customers", "customer_id"), ("payments", "invoice_id")):
        message = _rejected(tmp_path, source)
        assert f"column {column!r}: 1 rows {what} (rule: {rule}; e.g. {value!r})" in message
    assert f"column 'customer_id': 1 rows {what} (rule: {rule}" in _rejected(tmp_path, "usage")


def test_id_rules_count_rows_and_report_every_rule(tmp_path: Path) -> None:
    frame = customer_rows(6).with_columns(
        pl.Series("customer_id", ["C1", " C2", "C3 ", "NULL", "none", "C6"])
    )
    write(tmp_path, "customers", frame)
    message = _rejected(tmp_path, "customers")
    assert "2 rows have leading or trailing whitespace" in message
    assert "2 rows are null literals" in message


def test_nullable_columns_may_stay_empty_in_csv(tmp_path: Path) -> None:
    path = write(tmp_path, "tickets", ticket_rows())
    assert path.read_text().count(",open,,,\n") == 2  # resolved_at, hours and csat left empty
    frame = read_batch(tmp_path, SAAS_FEEDS["tickets"], DAY).frame
    assert frame["resolved_at"].null_count() == frame["csat"].null_count() == 2


def test_id_columns_of_the_contract() -> None:
    assert CUSTOMERS.id_columns == ("customer_id",)
    assert SAAS_FEEDS["payments"].id_columns == ("payment_id", "invoice_id", "customer_id")
    assert "plan" not in SAAS_FEEDS["invoices"].id_columns  # categories are not ids


# --- numeric bounds ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "value", "problem"),
    [
        ("monthly_price", "NaN", "1 rows are NaN or infinite (rule: finite; e.g. nan)"),
        ("monthly_price", "inf", "1 rows are NaN or infinite (rule: finite; e.g. inf)"),
        ("monthly_price", "-inf", "1 rows are NaN or infinite (rule: finite; e.g. -inf)"),
        ("monthly_price", "1e308", "1 rows above 10000000 (rule: <= 10000000; e.g. 1e+308)"),
        ("discount_pct", "250", "1 rows above 100 (rule: <= 100; e.g. 250.0)"),
        (
            "seats",
            "9223372036854775807",
            "1 rows above 100000 (rule: <= 100000; e.g. 9223372036854775807)",
        ),
        ("seats", "0", "1 rows below 1 (rule: >= 1)"),
        ("discount_pct", "-5", "1 negative rows (rule: >= 0)"),
    ],
)
def test_values_outside_the_business_bounds(
    tmp_path: Path, column: str, value: str, problem: str
) -> None:
    text = as_text(customer_rows()).with_columns(pl.all().cast(pl.String))
    write_text(tmp_path, "customers", _with_value(text, column, 1, value).write_csv())
    assert f"column {column!r}: {problem}" in _rejected(tmp_path, "customers")


def test_non_finite_floats_in_parquet_are_refused(tmp_path: Path) -> None:
    minutes = pl.Series("minutes", [float("nan"), float("inf"), 3.0, 4.0])
    write(tmp_path, "usage", usage_rows().with_columns(minutes))
    message = _rejected(tmp_path, "usage")
    assert "column 'minutes': 2 rows are NaN or infinite (rule: finite" in message


def test_a_contract_can_allow_non_finite_values_and_bounds_default_to_non_negative(
    tmp_path: Path,
) -> None:
    feed = LandingSource(
        name="readings",
        file_format="csv",
        columns={"sensor_id": pl.String(), "value": pl.Float64(), "count": pl.Int64()},
        key=("sensor_id",),
        timestamp_column=None,
        description="test feed",
        non_finite=frozenset({"value"}),
        bounds={"value": (-50, None)},
    )
    assert feed.bounds_of("count") == (0, None)
    path = partition_dir(tmp_path, feed, DAY) / "part-00000.csv"
    path.parent.mkdir(parents=True)
    path.write_text("sensor_id,value,count\nS1,NaN,1\nS2,-40.5,2\nS3,inf,3\n")
    assert read_batch(tmp_path, feed, DAY).frame["value"].is_nan().sum() == 1
    path.write_text("sensor_id,value,count\nS1,-51,-1\n")
    with pytest.raises(LandingFileError) as info:
        read_batch(tmp_path, feed, DAY)
    assert "column 'value': 1 rows below -50 (rule: >= -50)" in str(info.value)
    assert "column 'count': 1 negative rows (rule: >= 0)" in str(info.value)


def test_contract_rules_must_fit_their_columns() -> None:
    base = dict(
        name="x",
        file_format="csv",
        columns={"id": pl.String(), "n": pl.Int64(), "day": pl.Date()},
        key=("id",),
        timestamp_column=None,
        description="test feed",
    )
    bad = {
        "bounds of 'id': column is not numeric": {"bounds": {"id": (0, 1)}},
        "bounds of 'n': low 5 > high 1": {"bounds": {"n": (5, 1)}},
        "non_finite 'n': column is not a float column": {"non_finite": frozenset({"n"})},
        "ids 'n': column is not a string column": {"ids": frozenset({"n"})},
        "future_columns 'n': column is not a date or timestamp": {
            "future_columns": frozenset({"n"})
        },
        "unknown columns ['zz']": {"bounds": {"zz": (0, 1)}},
    }
    for message, extra in bad.items():
        with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
            LandingSource(**base, **extra)  # type: ignore[arg-type]


def test_every_saas_numeric_column_has_declared_bounds() -> None:
    for feed in SAAS_FEEDS.values():
        numeric = {c for c, dtype in feed.columns.items() if dtype.is_numeric()}
        assert numeric == set(feed.bounds), feed.name
        assert all(high is not None for _, high in feed.bounds.values()), feed.name


# --- columns ------------------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["customers", "payments", "usage"])
def test_extra_columns_are_refused(tmp_path: Path, source: str) -> None:
    frames = {"customers": customer_rows(), "payments": payment_rows(), "usage": usage_rows()}
    extra = frames[source].with_columns(pl.lit("x").alias("coupon"), pl.lit(1).alias("z"))
    write(tmp_path, source, extra)
    message = _rejected(tmp_path, source)
    assert "unexpected columns ['coupon', 'z'] (rule: no extra columns)" in message


def test_missing_and_extra_columns_are_both_named(tmp_path: Path) -> None:
    write(tmp_path, "payments", payment_rows().rename({"amount": "amount_eur"}))
    message = _rejected(tmp_path, "payments")
    assert "missing columns ['amount'] (rule: contract columns)" in message
    assert "unexpected columns ['amount_eur'] (rule: no extra columns)" in message


# --- file names and encodings ------------------------------------------------------------------


def test_upper_case_extension_is_read(tmp_path: Path) -> None:
    path = write(tmp_path, "customers", customer_rows())
    path.rename(path.with_name("part-00000.CSV"))
    batch = read_batch(tmp_path, CUSTOMERS, DAY)
    assert batch.frame.select(list(CUSTOMERS.columns)).equals(customer_rows())
    assert batch.frame["_source_file"][0] == "customers/date=2025-03-01/part-00000.CSV"


def test_unknown_extension_names_the_file_and_the_expected_names(tmp_path: Path) -> None:
    path = write(tmp_path, "customers", customer_rows())
    path.rename(path.with_name("part-00000.txt"))
    with pytest.raises(LandingFileError) as info:
        read_batch(tmp_path, CUSTOMERS, DAY)
    message = str(info.value)
    assert str(partition_dir(tmp_path, CUSTOMERS, DAY)) in message
    assert "found ['part-00000.txt']" in message
    assert "part-00000.{csv|jsonl|parquet}" in message and "(rule: file name)" in message


def test_bom_and_crlf_are_accepted(tmp_path: Path) -> None:
    text = csv_text(ticket_rows()).replace("\n", "\r\n")
    write_text(tmp_path, "tickets", b"\xef\xbb\xbf" + text.encode())
    frame = read_batch(tmp_path, SAAS_FEEDS["tickets"], DAY).frame
    assert frame.select(list(SAAS_FEEDS["tickets"].columns)).equals(ticket_rows())

    jsonl = as_text(payment_rows()).write_ndjson().replace("\n", "\r\n")
    write_text(tmp_path, "payments", b"\xef\xbb\xbf" + jsonl.encode())
    frame = read_batch(tmp_path, SAAS_FEEDS["payments"], DAY).frame
    assert frame.select(list(SAAS_FEEDS["payments"].columns)).equals(payment_rows())


def test_bom_only_csv_is_an_empty_file(tmp_path: Path) -> None:
    write_text(tmp_path, "customers", b"\xef\xbb\xbf")
    assert "file is empty (0 bytes) (rule: non-empty file)" in _rejected(tmp_path, "customers")


# --- time ---------------------------------------------------------------------------------------


def test_future_dated_rows_are_refused(tmp_path: Path) -> None:
    frame = _with_value(customer_rows(), "updated_at", 2, datetime(2031, 1, 1, tzinfo=UTC))
    write(tmp_path, "customers", frame)
    message = _rejected(tmp_path, "customers")
    assert (
        "column 'updated_at': 1 rows at or after 2025-03-03T00:00:00Z "
        "(rule: not after delivery day 2025-03-01 + 1 day; e.g. 2031-01-01 00:00:00+00:00)"
    ) in message


def test_future_dates_are_refused_and_the_tolerance_is_allowed(tmp_path: Path) -> None:
    within = datetime(2025, 3, 2, 23, 59, 59, tzinfo=UTC)  # end of the delivery day + 1 day
    frame = _with_value(customer_rows(), "updated_at", 0, within)
    write(tmp_path, "customers", frame)
    assert read_batch(tmp_path, CUSTOMERS, DAY).frame["updated_at"].max() == within

    frame = _with_value(customer_rows(), "signup_date", 0, DAY + timedelta(days=2))
    write(tmp_path, "customers", frame)
    assert "column 'signup_date': 1 rows at or after" in _rejected(tmp_path, "customers")


def test_scheduled_dates_may_lie_ahead() -> None:
    assert SAAS_FEEDS["invoices"].future_columns == frozenset({"period_end"})
    assert all(not feed.future_columns for name, feed in SAAS_FEEDS.items() if name != "invoices")


def test_tolerance_is_part_of_the_contract(tmp_path: Path) -> None:
    strict = LandingSource(
        name="events",
        file_format="csv",
        columns={"event_id": pl.String(), "at": pl.Datetime("us", "UTC")},
        key=("event_id",),
        timestamp_column="at",
        description="test feed",
        future_tolerance=timedelta(0),
    )
    path = partition_dir(tmp_path, strict, date(2025, 3, 1)) / "part-00000.csv"
    path.parent.mkdir(parents=True)
    path.write_text("event_id,at\nE1,2025-03-01T23:59:59Z\nE2,2025-03-02T00:00:00Z\n")
    with pytest.raises(LandingFileError, match="1 rows at or after 2025-03-02T00:00:00Z"):
        read_batch(tmp_path, strict, date(2025, 3, 1))
