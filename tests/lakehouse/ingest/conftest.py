from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl

from lakehouse.sources.contract import DATE_FORMAT, TIMESTAMP_FORMAT, landing_path
from lakehouse.sources.saas.contract import SAAS_FEEDS

DAY = date(2025, 3, 1)


def usage_rows(n: int = 4) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "customer_id": [f"C{i:07d}" for i in range(n)],
            "usage_date": [DAY] * n,
            "active_users": list(range(1, n + 1)),
            "sessions": [3] * n,
            "events": [40] * n,
            "minutes": [12.5] * n,
            "features_used": [2] * n,
        },
        schema=SAAS_FEEDS["usage"].schema,
    )


def payment_rows(n: int = 3) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "payment_id": [f"P{i}" for i in range(n)],
            "invoice_id": [f"I{i}" for i in range(n)],
            "customer_id": [f"C{i:07d}" for i in range(n)],
            "attempted_at": [datetime(2025, 3, 1, 9, i, tzinfo=UTC) for i in range(n)],
            "amount": [99.0] * n,
            "attempt": [1] * n,
            "status": ["succeeded"] * (n - 1) + ["failed"],
            "failure_reason": [None] * (n - 1) + ["card_declined"],
        },
        schema=SAAS_FEEDS["payments"].schema,
    )


def as_text(frame: pl.DataFrame) -> pl.DataFrame:
    """Dates and timestamps formatted as the contract's text formats."""
    return frame.with_columns(
        pl.col(pl.Datetime).dt.strftime(TIMESTAMP_FORMAT), pl.col(pl.Date).dt.strftime(DATE_FORMAT)
    )


def write(landing: Path, source: str, frame: pl.DataFrame, day: date = DAY) -> Path:
    """Write ``frame`` in the source's contract format; returns the file."""
    path = landing_path(landing, SAAS_FEEDS[source], day)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = SAAS_FEEDS[source].file_format
    if fmt == "parquet":
        frame.write_parquet(path)
    elif fmt == "csv":
        as_text(frame).write_csv(path)
    else:
        as_text(frame).write_ndjson(path)
    return path


def customer_rows(n: int = 3) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "customer_id": [f"C{i:07d}" for i in range(n)],
            "signup_date": [date(2024, 6, 1)] * n,
            "plan": ["growth"] * n,
            "seats": [9] * n,
            "region": ["NA"] * n,
            "industry": ["retail"] * n,
            "acquisition_channel": ["organic"] * n,
            "monthly_price": [225.0] * n,
            "discount_pct": [0.0] * n,
            "updated_at": [datetime(2025, 3, 1, 8, i, tzinfo=UTC) for i in range(n)],
        },
        schema=SAAS_FEEDS["customers"].schema,
    )


def ticket_rows(n: int = 2) -> pl.DataFrame:
    opened = [datetime(2025, 3, 1, 7, i, tzinfo=UTC) for i in range(n)]
    return pl.DataFrame(
        {
            "ticket_id": [f"TKT-20250301-{i:06d}" for i in range(n)],
            "customer_id": [f"C{i:07d}" for i in range(n)],
            "opened_at": opened,
            "updated_at": opened,
            "severity": ["low"] * n,
            "category": ["bug"] * n,
            "status": ["open"] * n,
            "resolved_at": [None] * n,
            "resolution_hours": [None] * n,
            "csat": [None] * n,
        },
        schema=SAAS_FEEDS["tickets"].schema,
    )


def write_text(landing: Path, source: str, text: str | bytes, day: date = DAY) -> Path:
    """Write raw file content as the source's landing file for ``day``."""
    path = landing_path(landing, SAAS_FEEDS[source], day)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def csv_text(frame: pl.DataFrame) -> str:
    """The frame as the CSV a source would write (contract text formats)."""
    return as_text(frame).write_csv()
