"""The credit features and default labels of the lending source system.

Feature builder ``lending_credit`` (``CreditFeatures``): one row per loan open at the end of each
day ``d`` (booked on or before ``d``, not closed on or before ``d``), built only from what was
known by the end of ``d``:

* payment history, from the statements due in the last 3 / 6 / 12 calendar months (due dates in
  ``(d − k months, d]``): the maximum days past due and the number of missed payments; the
  current days past due (the latest statement's, 0 before the first); months on book;
* bureau, from the latest report in the last 12 months (else the application): revolving
  utilisation, debt-to-income and inquiries in the last 6 months; the utilisation trend (latest
  minus the latest report at least 6 months old, else minus the application's); the bureau
  score and delinquencies reported at application;
* the loan and the applicant: amount, term, rate, grade, purpose, declared income and years
  employed.

Every lookup is bounded to the 12 months before ``d``, so a row never depends on how far back
its chunk of days read. Protected attributes (``age_band``, ``sex``) are never read.

Label builder ``credit_default`` (``CreditDefaults``): for as-of ``A`` the loans open at the
start of ``A`` and not in default; label 1 when the loan first reaches 90 days past due or is
charged off in ``[A, A + horizon − 1]`` (``default_date`` is that day).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl

from lakehouse.features.labels import LabelDefinition, span_labels
from lakehouse.ingest.lending import (
    SILVER_BUREAU_REPORTS,
    SILVER_LOAN_APPLICATIONS,
    SILVER_LOANS,
    SILVER_REPAYMENTS,
)
from lakehouse.sources.lending.contract import DEFAULT_DPD, GRADES, PURPOSES
from lakehouse.storage import Lakehouse

WINDOW_MONTHS = (3, 6, 12)
HISTORY_MONTHS = 12
TREND_MONTHS = 6
# Calendar months are at most 31 days: reading this far back covers every 12-month window.
HISTORY_DAYS = 31 * HISTORY_MONTHS

PAYMENT_FEATURES: dict[str, pl.DataType] = {
    "current_dpd": pl.Int64(),
    **{f"max_dpd_{m}m": pl.Int64() for m in WINDOW_MONTHS},
    **{f"missed_payments_{m}m": pl.Int64() for m in WINDOW_MONTHS},
    "months_on_book": pl.Int64(),
}
BUREAU_FEATURES: dict[str, pl.DataType] = {
    "revolving_utilization": pl.Float64(),
    "utilization_trend_6m": pl.Float64(),
    "debt_to_income": pl.Float64(),
    "inquiries_6m": pl.Int64(),
    "bureau_score": pl.Int64(),
    "delinquencies_2y": pl.Int64(),
}
LOAN_FEATURES: dict[str, pl.DataType] = {
    "amount": pl.Float64(),
    "term_months": pl.Int64(),
    "interest_rate": pl.Float64(),
    "grade": pl.String(),
    "purpose": pl.String(),
    "annual_income": pl.Float64(),
    "employment_years": pl.Int64(),
}
CREDIT_FEATURES: dict[str, pl.DataType] = {
    **PAYMENT_FEATURES,
    **BUREAU_FEATURES,
    **LOAN_FEATURES,
}
"""Everything the builder computes, by name and type (use-case specs group them into views)."""


def _months_back(months: int) -> pl.Expr:
    return pl.col("day").dt.offset_by(f"-{months}mo")


class CreditFeatures:
    """Feature builder ``lending_credit`` (see the module docstring)."""

    def outputs(self) -> Mapping[str, pl.DataType]:
        return CREDIT_FEATURES

    def vocabularies(self) -> Mapping[str, tuple[str, ...]]:
        return {"grade": GRADES, "purpose": PURPOSES}

    def build(self, lake: Lakehouse, days: Sequence[date]) -> pl.DataFrame:
        """Rows for every loan open at the end of each of ``days`` (one chunk: keep it short)."""
        first, last = min(days), max(days)
        rows = _open_loans(lake, days)
        since = first - timedelta(days=HISTORY_DAYS)
        return (
            rows.join(_payment_history(lake, rows, since, last), on=["loan_id", "day"], how="left")
            .join(_bureau(lake, rows, since, last), on=["loan_id", "day"], how="left")
            .with_columns(
                pl.col(list(PAYMENT_FEATURES)).fill_null(0),
                pl.coalesce("reported_utilization", "revolving_utilization").alias(
                    "revolving_utilization"
                ),
                pl.coalesce("reported_dti", "debt_to_income").alias("debt_to_income"),
                pl.coalesce("reported_inquiries", "inquiries_6m").alias("inquiries_6m"),
            )
            .with_columns(
                (
                    pl.col("revolving_utilization")
                    - pl.coalesce("utilization_6m_ago", "application_utilization")
                ).alias("utilization_trend_6m")
            )
            .select("loan_id", "day", *(pl.col(c).cast(t) for c, t in CREDIT_FEATURES.items()))
            .sort("day", "loan_id")
        )


def _open_loans(lake: Lakehouse, days: Sequence[date]) -> pl.DataFrame:
    """Loan × day rows of the loans open at the end of each day, with loan and application data."""
    first, last = min(days), max(days)
    wanted = pl.DataFrame({"day": sorted(days)}, schema={"day": pl.Date()})
    loans = (
        lake.scan(SILVER_LOANS.name)
        .filter(
            (pl.col("originated_on") <= last)
            & (pl.col("closed_on").is_null() | (pl.col("closed_on") > first))
        )
        .select(
            "loan_id",
            "application_id",
            "applicant_id",
            "originated_on",
            "closed_on",
            "amount",
            "term_months",
            "interest_rate",
            "grade",
            "purpose",
        )
    )
    applications = lake.scan(SILVER_LOAN_APPLICATIONS.name).select(
        "application_id",
        "annual_income",
        "employment_years",
        "debt_to_income",
        "revolving_utilization",
        pl.col("revolving_utilization").alias("application_utilization"),
        "inquiries_6m",
        "bureau_score",
        "delinquencies_2y",
    )
    months = (
        (pl.col("day").dt.year() - pl.col("originated_on").dt.year()) * 12
        + pl.col("day").dt.month().cast(pl.Int64)
        - pl.col("originated_on").dt.month().cast(pl.Int64)
        - (pl.col("day").dt.day() < pl.col("originated_on").dt.day()).cast(pl.Int64)
    )
    return (
        loans.join(applications, on="application_id", how="left")
        .join(wanted.lazy(), how="cross")
        .filter(
            (pl.col("originated_on") <= pl.col("day"))
            & (pl.col("closed_on").is_null() | (pl.col("closed_on") > pl.col("day")))
        )
        .with_columns(months.alias("months_on_book"))
        .drop("application_id", "originated_on", "closed_on")
        .collect()
    )


def _payment_history(lake: Lakehouse, rows: pl.DataFrame, since: date, last: date) -> pl.DataFrame:
    """Days past due and missed payments over the statements of the last 3/6/12 months."""
    statements = (
        lake.scan(SILVER_REPAYMENTS.name)
        .filter(
            pl.col("due_date").is_between(since, last)
            & pl.col("loan_id").is_in(rows["loan_id"].unique().implode())
        )
        .select("loan_id", "due_date", "days_past_due", (pl.col("status") == "missed").alias("m"))
    )
    joined = (
        rows.lazy()
        .select("loan_id", "day")
        .join(statements, on="loan_id")
        .filter(
            (pl.col("due_date") <= pl.col("day"))
            & (pl.col("due_date") > _months_back(HISTORY_MONTHS))
        )
    )

    def within(months: int) -> pl.Expr:
        return pl.col("due_date") > _months_back(months)

    return (
        joined.group_by("loan_id", "day")
        .agg(
            pl.col("days_past_due").sort_by("due_date").last().alias("current_dpd"),
            *(
                pl.col("days_past_due").filter(within(m)).max().alias(f"max_dpd_{m}m")
                for m in WINDOW_MONTHS
            ),
            *(
                pl.col("m").filter(within(m)).sum().cast(pl.Int64).alias(f"missed_payments_{m}m")
                for m in WINDOW_MONTHS
            ),
        )
        .collect()
    )


def _bureau(lake: Lakehouse, rows: pl.DataFrame, since: date, last: date) -> pl.DataFrame:
    """The latest bureau report of the last 12 months, and the latest one at least 6 months old."""
    reports = (
        lake.scan(SILVER_BUREAU_REPORTS.name)
        .filter(
            pl.col("reported_on").is_between(since, last)
            & pl.col("applicant_id").is_in(rows["applicant_id"].unique().implode())
        )
        .select(
            "applicant_id", "reported_on", "revolving_utilization", "debt_to_income", "inquiries_6m"
        )
    )
    joined = (
        rows.lazy()
        .select("loan_id", "applicant_id", "day")
        .join(reports, on="applicant_id")
        .filter(
            (pl.col("reported_on") <= pl.col("day"))
            & (pl.col("reported_on") > _months_back(HISTORY_MONTHS))
        )
    )
    old = pl.col("reported_on") <= _months_back(TREND_MONTHS)

    # Sorted by report date, so ``last`` within each group is the latest report.
    return (
        joined.sort("reported_on")
        .group_by("loan_id", "day")
        .agg(
            pl.col("revolving_utilization").last().alias("reported_utilization"),
            pl.col("debt_to_income").last().alias("reported_dti"),
            pl.col("inquiries_6m").last().alias("reported_inquiries"),
            pl.col("revolving_utilization").filter(old).last().alias("utilization_6m_ago"),
        )
        .collect()
    )


@dataclass(frozen=True)
class CreditDefaults:
    """Label builder ``credit_default`` (see the module docstring)."""

    def build(
        self, lake: Lakehouse, definition: LabelDefinition, as_of: Sequence[date]
    ) -> pl.DataFrame:
        last = max(as_of) + timedelta(days=definition.horizon_days - 1)
        delinquent = (
            lake.scan(SILVER_REPAYMENTS.name)
            .filter((pl.col("days_past_due") >= DEFAULT_DPD) & (pl.col("due_date") <= last))
            .select("loan_id", pl.col("due_date").alias("event_date"))
        )
        charged_off = (
            lake.scan(SILVER_LOANS.name)
            .filter((pl.col("status") == "charged_off") & (pl.col("closed_on") <= last))
            .select("loan_id", pl.col("closed_on").alias("event_date"))
        )
        defaults = (
            pl.concat([delinquent, charged_off]).group_by("loan_id").agg(pl.col("event_date").min())
        )
        spans = (
            lake.scan(SILVER_LOANS.name)
            .select(
                "loan_id",
                pl.col("originated_on").alias("start_date"),
                # A loan closed without default (paid off) leaves the population.
                pl.when(pl.col("status") != "charged_off")
                .then(pl.col("closed_on"))
                .alias("end_date"),
            )
            .join(defaults, on="loan_id", how="left")
            .rename({"loan_id": definition.join_key})
            .collect()
        )
        return span_labels(spans, definition, as_of)
