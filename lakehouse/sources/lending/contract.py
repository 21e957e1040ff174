"""The lending source system's feeds: booked loan applications, loan accounts, monthly
repayment statements, monthly credit-bureau refreshes and published macro indicators (see
``docs/lending.md``), with their vocabularies.

The simulator in this package writes exactly these feeds; a real lender's exports that follow
the same contract are ingested the same way. ``age_band`` and ``sex`` are collected with the
application for fairness evidence only: they are never features.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl

from lakehouse.catalog import TIMESTAMP
from lakehouse.sources.contract import LandingSource, evaluation_path

# The product catalogue: loan terms in months. A term outside it is refused at ingestion.
TERMS: tuple[int, ...] = (36, 60)
GRADES = ("A", "B", "C", "D", "E")
PURPOSES = (
    "debt_consolidation",
    "credit_card",
    "home_improvement",
    "major_purchase",
    "car",
    "medical",
    "other",
)
AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")
SEXES = ("female", "male")
LOAN_STATUSES = ("open", "paid_off", "charged_off")
CHARGE_OFF_REASONS = ("delinquency", "bankruptcy")
REPAYMENT_STATUSES = ("paid", "partial", "missed")
DAYS_PER_CYCLE = 30
"""Days past due are reported in 30-day cycles, as lenders report delinquency to bureaus."""
DEFAULT_DPD = 90
"""A loan defaults when it first reaches this many days past due (or is charged off)."""

LENDING_FEEDS: dict[str, LandingSource] = {
    source.name: source
    for source in (
        LandingSource(
            name="loan_applications",
            file_format="csv",
            columns={
                "application_id": pl.String(),
                "applicant_id": pl.String(),
                "applied_at": TIMESTAMP,
                "requested_amount": pl.Float64(),
                "term_months": pl.Int64(),
                "purpose": pl.String(),
                "annual_income": pl.Float64(),
                "employment_years": pl.Int64(),
                "debt_to_income": pl.Float64(),
                "revolving_utilization": pl.Float64(),
                "delinquencies_2y": pl.Int64(),
                "inquiries_6m": pl.Int64(),
                "bureau_score": pl.Int64(),
                "age_band": pl.String(),
                "sex": pl.String(),
            },
            key=("application_id",),
            timestamp_column="applied_at",
            description=(
                "Booked loan applications with the applicant's declared income, employment "
                "and the credit-bureau attributes pulled at application. debt_to_income is "
                "monthly debt payments (including the new loan) over monthly income, as a "
                "ratio; age_band and sex are for fairness evidence only, never features."
            ),
            categories={"purpose": PURPOSES, "age_band": AGE_BANDS, "sex": SEXES},
        ),
        LandingSource(
            name="loans",
            file_format="jsonl",
            columns={
                "loan_id": pl.String(),
                "application_id": pl.String(),
                "applicant_id": pl.String(),
                "originated_on": pl.Date(),
                "amount": pl.Float64(),
                "term_months": pl.Int64(),
                "interest_rate": pl.Float64(),
                "installment": pl.Float64(),
                "grade": pl.String(),
                "purpose": pl.String(),
                "status": pl.String(),
                "closed_on": pl.Date(),
                "charge_off_reason": pl.String(),
                "updated_at": TIMESTAMP,
            },
            key=("loan_id", "updated_at"),
            timestamp_column="updated_at",
            description=(
                "Loan account versions: one row when the loan is booked (status open) and one "
                "when it closes (paid_off or charged_off, with closed_on). interest_rate is "
                "the annual rate in percent; installment the monthly payment."
            ),
            nullable=frozenset({"closed_on", "charge_off_reason"}),
            categories={
                "grade": GRADES,
                "purpose": PURPOSES,
                "status": LOAN_STATUSES,
                "charge_off_reason": CHARGE_OFF_REASONS,
            },
        ),
        LandingSource(
            name="repayments",
            file_format="parquet",
            columns={
                "loan_id": pl.String(),
                "statement_number": pl.Int64(),
                "due_date": pl.Date(),
                "amount_due": pl.Float64(),
                "amount_paid": pl.Float64(),
                "status": pl.String(),
                "days_past_due": pl.Int64(),
                "balance": pl.Float64(),
            },
            key=("loan_id", "due_date"),
            timestamp_column="due_date",
            description=(
                "Monthly statements of every open loan on its due date: what was due "
                "(installments in arrears included), what was paid, and the days past due "
                "after the payment, in 30-day cycles. A missed payment raises days_past_due "
                "by 30; a payment resets it (paid) or lowers it by 30 (partial)."
            ),
            categories={"status": REPAYMENT_STATUSES},
        ),
        LandingSource(
            name="bureau_reports",
            file_format="csv",
            columns={
                "applicant_id": pl.String(),
                "reported_on": pl.Date(),
                "revolving_utilization": pl.Float64(),
                "debt_to_income": pl.Float64(),
                "inquiries_6m": pl.Int64(),
            },
            key=("applicant_id", "reported_on"),
            timestamp_column="reported_on",
            description=(
                "Monthly credit-bureau refresh of every borrower with an open loan: revolving "
                "utilisation, current debt-to-income and credit inquiries in the last 6 months."
            ),
        ),
        LandingSource(
            name="macro_indicators",
            file_format="csv",
            columns={
                "published_on": pl.Date(),
                "unemployment_rate": pl.Float64(),
                "base_rate": pl.Float64(),
            },
            key=("published_on",),
            timestamp_column="published_on",
            description=(
                "Published economic indicators in percent, on the first day and on the first "
                "of every month: the unemployment rate and the central bank's base rate."
            ),
        ),
    )
}

CREDIT_TRUTH = "credit_truth"
CREDIT_TRUTH_COLUMNS: dict[str, pl.DataType] = {
    "loan_id": pl.String(),
    "as_of_date": pl.Date(),
    "pd_12m": pl.Float64(),
    "miss_probability": pl.Float64(),
}
"""Schema of the evaluation-only truth table (see docs/lending.md); never a feature source."""


def truth_path(landing_dir: Path, day: date) -> Path:
    """Path of the evaluation-only credit truth for ``day`` (outside every landing feed)."""
    return evaluation_path(landing_dir, CREDIT_TRUTH, day)
