"""The lending source system's silver tables and the business rules a delivery must pass.

Silver: booked applications, current loan accounts, monthly repayment statements, bureau
reports and macro indicators, each fed by one bronze table.

Cross-feed rules (``SourceTables.checks``; see ``lakehouse.ingest.delivery``), each refusing the
whole delivery with the files, column, rule and row count:

* a loan's or application's term is in the product catalogue (36 or 60 months);
* a repayment belongs to a loan known in ``silver.loans`` or booked in the same delivery;
* days past due never fall on a statement with nothing paid;
* an application is dated no later than its loan's first repayment.

A negative income (or any negative amount) is refused earlier, per file, by the contract's
``>= 0`` rule of ``lakehouse.ingest.reader``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta

import polars as pl

from lakehouse.catalog import TableSpec
from lakehouse.ingest.delivery import SOURCE_FILE, files_of
from lakehouse.ingest.tables import LINEAGE, DeliveryCheck, SilverFlow, SourceTables
from lakehouse.sources.lending.contract import LENDING_FEEDS, TERMS
from lakehouse.storage import Lakehouse

SILVER_LOAN_APPLICATIONS = TableSpec(
    name="silver.loan_applications",
    schema={**LENDING_FEEDS["loan_applications"].columns, **LINEAGE},
    description="Booked loan applications with the applicant's data at application.",
    primary_key=("application_id",),
    version_column="applied_at",
)
SILVER_LOANS = TableSpec(
    name="silver.loans",
    schema={**LENDING_FEEDS["loans"].columns, **LINEAGE},
    description="Current state of every loan account (latest version by updated_at).",
    primary_key=("loan_id",),
    version_column="updated_at",
)
SILVER_REPAYMENTS = TableSpec(
    name="silver.repayments",
    schema={**LENDING_FEEDS["repayments"].columns, **LINEAGE},
    description="Monthly repayment statements: due, paid, days past due, balance.",
    primary_key=("loan_id", "due_date"),
)
SILVER_BUREAU_REPORTS = TableSpec(
    name="silver.bureau_reports",
    schema={**LENDING_FEEDS["bureau_reports"].columns, **LINEAGE},
    description="Monthly credit-bureau refreshes of borrowers with an open loan.",
    primary_key=("applicant_id", "reported_on"),
)
SILVER_MACRO_INDICATORS = TableSpec(
    name="silver.macro_indicators",
    schema={**LENDING_FEEDS["macro_indicators"].columns, **LINEAGE},
    description="Published unemployment and base rates.",
    primary_key=("published_on",),
)

Frames = Mapping[str, pl.DataFrame]
# A loan's previous statement is at most a month (31 days) before the next one.
PREVIOUS_STATEMENT_DAYS = 62


def _silver(lake: Lakehouse, spec: TableSpec) -> pl.LazyFrame:
    """The silver table, or an empty frame of its schema before its first write."""
    if lake.exists(spec.name):
        return lake.scan(spec.name)
    return pl.LazyFrame(schema=dict(spec.schema))


def terms_in_catalogue(lake: Lakehouse, frames: Frames) -> list[str]:
    """Every loan and application has a term of the product catalogue."""
    problems = []
    for feed in ("loan_applications", "loans"):
        outside = frames[feed].filter(~pl.col("term_months").is_in(list(TERMS)))
        if outside.height:
            terms = sorted(outside["term_months"].unique().to_list())
            problems.append(
                f"{files_of(outside)}: column 'term_months': {outside.height} rows with terms "
                f"{terms} outside the product catalogue {list(TERMS)} (rule: product catalogue)"
            )
    return problems


def repayments_of_known_loans(lake: Lakehouse, frames: Frames) -> list[str]:
    """Every repayment is for a loan in ``silver.loans`` or booked in the same delivery."""
    repayments = frames["repayments"]
    wanted = repayments["loan_id"].unique()
    known = (
        _silver(lake, SILVER_LOANS)
        .filter(pl.col("loan_id").is_in(wanted.implode()))
        .select("loan_id")
        .collect()["loan_id"]
    )
    delivered = frames["loans"]["loan_id"]
    unknown = repayments.filter(~pl.col("loan_id").is_in(pl.concat([known, delivered]).implode()))
    if unknown.is_empty():
        return []
    return [
        f"{files_of(unknown)}: column 'loan_id': {unknown.height} rows for loans neither in "
        f"{SILVER_LOANS.name} nor booked in this delivery (rule: repayment of a known loan; "
        f"e.g. {unknown['loan_id'][0]!r})"
    ]


def days_past_due_fall_only_with_payment(lake: Lakehouse, frames: Frames) -> list[str]:
    """On each delivered statement with nothing paid, days past due are not below the loan's
    previous statement (from the delivery itself or from silver)."""
    delivered = frames["repayments"].select(
        "loan_id", "due_date", "days_past_due", "amount_paid", SOURCE_FILE
    )
    if delivered.is_empty():
        return []
    earliest = delivered["due_date"].min()
    assert isinstance(earliest, date)
    since = earliest - timedelta(days=PREVIOUS_STATEMENT_DAYS)
    earlier = (
        _silver(lake, SILVER_REPAYMENTS)
        .filter(
            pl.col("loan_id").is_in(delivered["loan_id"].unique().implode())
            & (pl.col("due_date") >= since)
        )
        .select("loan_id", "due_date", "days_past_due", "amount_paid")
        .collect()
        .join(delivered, on=["loan_id", "due_date"], how="anti")  # a re-delivery replaces them
        .with_columns(pl.lit(None, dtype=pl.String).alias(SOURCE_FILE))
    )
    ordered = pl.concat([earlier, delivered]).sort("loan_id", "due_date")
    previous = pl.col("days_past_due").shift(1).over("loan_id")
    falling = ordered.with_columns(previous.alias("previous_dpd")).filter(
        pl.col(SOURCE_FILE).is_not_null()
        & (pl.col("amount_paid") == 0)
        & (pl.col("days_past_due") < pl.col("previous_dpd"))
    )
    if falling.is_empty():
        return []
    first = falling.row(0, named=True)
    return [
        f"{files_of(falling)}: column 'days_past_due': {falling.height} statements with nothing "
        "paid fall below the loan's previous statement (rule: days past due fall only with a "
        f"payment; e.g. {first['loan_id']!r} on {first['due_date']}: {first['days_past_due']} "
        f"after {first['previous_dpd']})"
    ]


def applications_before_first_repayment(lake: Lakehouse, frames: Frames) -> list[str]:
    """No application is dated after its loan's first repayment statement."""
    applications, loans, repayments = (
        frames[f] for f in ("loan_applications", "loans", "repayments")
    )
    if applications.is_empty() and repayments.is_empty():
        return []
    links = pl.concat(
        [
            loans.select("loan_id", "application_id").lazy(),
            _silver(lake, SILVER_LOANS).select("loan_id", "application_id"),
        ]
    ).unique(maintain_order=True)
    delivered_apps = applications.select(
        "application_id", pl.col("applied_at").dt.date().alias("applied_on"), SOURCE_FILE
    )
    # Loans concerned: those with a delivered application or a delivered statement.
    concerned = (
        links.filter(
            pl.col("application_id").is_in(delivered_apps["application_id"].implode())
            | pl.col("loan_id").is_in(repayments["loan_id"].unique().implode())
        )
        .collect()
        .unique("loan_id", keep="first", maintain_order=True)  # the delivered link wins
    )
    stored_apps = (
        _silver(lake, SILVER_LOAN_APPLICATIONS)
        .filter(pl.col("application_id").is_in(concerned["application_id"].implode()))
        .select("application_id", pl.col("applied_at").dt.date().alias("applied_on"))
        .collect()
        .join(delivered_apps, on="application_id", how="anti")
        .with_columns(pl.lit(None, dtype=pl.String).alias(SOURCE_FILE))
    )
    first_due = (
        pl.concat(
            [
                repayments.select("loan_id", "due_date", SOURCE_FILE).lazy(),
                _silver(lake, SILVER_REPAYMENTS)
                .filter(pl.col("loan_id").is_in(concerned["loan_id"].implode()))
                .select("loan_id", "due_date", pl.lit(None, dtype=pl.String).alias(SOURCE_FILE)),
            ]
        )
        .sort("due_date", pl.col(SOURCE_FILE).is_null())
        .group_by("loan_id")
        .agg(pl.all().first())
        .collect()
        .rename({SOURCE_FILE: "_repayment_file"})
    )
    late = (
        pl.concat([delivered_apps, stored_apps])
        .join(concerned, on="application_id")
        .join(first_due, on="loan_id")
        .filter(pl.col("applied_on") > pl.col("due_date"))
    )
    late = late.with_columns(pl.coalesce(SOURCE_FILE, "_repayment_file").alias(SOURCE_FILE))
    late = late.filter(pl.col(SOURCE_FILE).is_not_null())  # both sides stored: checked before
    if late.is_empty():
        return []
    first = late.sort("application_id").row(0, named=True)
    return [
        f"{files_of(late)}: column 'applied_at': {late.height} applications dated after their "
        "loan's first repayment (rule: application before first repayment; e.g. "
        f"{first['application_id']!r} applied {first['applied_on']}, first due "
        f"{first['due_date']})"
    ]


def _flow(silver: TableSpec, feed: str) -> SilverFlow:
    return SilverFlow(silver, LENDING_FEEDS[feed])


LENDING = SourceTables(
    "lending",
    LENDING_FEEDS,
    {
        flow.silver.name: flow
        for flow in (
            _flow(SILVER_LOAN_APPLICATIONS, "loan_applications"),
            _flow(SILVER_LOANS, "loans"),
            _flow(SILVER_REPAYMENTS, "repayments"),
            _flow(SILVER_BUREAU_REPORTS, "bureau_reports"),
            _flow(SILVER_MACRO_INDICATORS, "macro_indicators"),
        )
    },
    checks=(
        DeliveryCheck("product catalogue", ("loan_applications", "loans"), terms_in_catalogue),
        DeliveryCheck(
            "repayment of a known loan", ("loans", "repayments"), repayments_of_known_loans
        ),
        DeliveryCheck(
            "days past due fall only with a payment",
            ("repayments",),
            days_past_due_fall_only_with_payment,
        ),
        DeliveryCheck(
            "application before first repayment",
            ("loan_applications", "loans", "repayments"),
            applications_before_first_repayment,
        ),
    ),
)
"""The lending source: five feeds, five silver tables, four cross-feed rules."""
