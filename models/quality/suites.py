"""The Great Expectations suites, one per validated table, as reviewed code.

Each expectation carries GX's own ``severity``: ``critical`` expectations make the table's
blocking Dagster check fail (downstream training does not run), ``warning`` ones are reported
by a non-blocking check. Values only known at run time — the previous table version's row
count, the partition being built — enter as GX suite parameters (``{"$PARAMETER": name}``)
computed by ``models.quality.inputs``; the expectations themselves never change at run time.

Suites are built by functions, not at import: importing GX takes seconds, and Dagster loads
the definitions (and this module) in every process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import polars as pl

from lakehouse.ingest.saas import (
    SILVER_CUSTOMERS,
    SILVER_PAYMENTS,
    SILVER_TICKETS,
    SILVER_USAGE_DAILY,
)
from lakehouse.ingest.tables import SilverFlow
from lakehouse.sources.saas.contract import (
    CHANNELS,
    FAILURE_REASONS,
    INDUSTRIES,
    PAYMENT_STATUSES,
    PLANS,
    REGIONS,
    SEVERITIES,
    TICKET_CATEGORIES,
    TICKET_STATUSES,
)
from models.usecase.spec import UseCase

if TYPE_CHECKING:
    from great_expectations.expectations import Expectation

CRITICAL, WARNING = "critical", "warning"

# GX compares a pandas column's scalar type; ``models.quality.runner.to_pandas`` converts
# polars types so that each of these names is unambiguous (date vs. UTC timestamp).
GX_TYPES: dict[type[pl.DataType], str] = {
    pl.Int64: "int64",
    pl.Float64: "float64",
    pl.String: "str",
    pl.Date: "datetime64",
    pl.Datetime: "Timestamp",
}

# Parameter names shared by the suites and ``models.quality.inputs``.
ROWS_FLOOR = "rows_floor"
ROWS_WARN_MIN = "rows_warn_min"
ROWS_WARN_MAX = "rows_warn_max"
FRESH_SINCE = "fresh_since"

# Rolling float sums round to values like -7e-15 where the true sum is 0: not a defect.
FLOAT_TOLERANCE = 1e-6
LEAKAGE_MARGIN = "_leakage_margin_days"
EVENT_OFFSET = "_event_offset_seconds"
SIGNUP_DATE = "_signup_date"


@dataclass(frozen=True)
class RowChange:
    """Row-count bounds against the previous table version, as ratios of its row count."""

    error_min_ratio: float
    warn_min_ratio: float
    warn_max_ratio: float
    min_rows: int = 0
    """Absolute floor (critical), also when there is no previous version."""


@dataclass(frozen=True)
class Freshness:
    """Latest ``column`` value must reach the built partition's last day minus ``lag_days``.

    For the training set (not partitioned) the reference is the latest matured label date.
    """

    column: str
    lag_days: int
    severity: str


@dataclass(frozen=True)
class Leakage:
    """What the training-set leakage columns are derived from (``models.quality.inputs``)."""

    join_key: str
    tenure: Mapping[str, str] | None
    """``{"table", "column", "feature"}``: an entity's start date and the feature counting days
    since it; None: only the event-timestamp offset is derived."""


@dataclass(frozen=True)
class TableSuite:
    """The expectations of one table plus what its run-time parameters are derived from."""

    table: str
    expectations: tuple[Expectation, ...]
    row_change: RowChange
    freshness: Freshness
    derived_columns: tuple[str, ...] = ()
    freshness_table: str | None = None
    """A table whose latest ``as_of_date`` is the freshness reference (the training set's
    labels); None: the last day of the partition range being built."""
    leakage: Leakage | None = None


def _p(name: str) -> dict[str, str]:
    return {"$PARAMETER": name}


def _schema(spec_schema: Mapping[str, pl.DataType], derived: Sequence[str]) -> list[Expectation]:
    import great_expectations.expectations as gxe

    rules: list[Expectation] = [
        gxe.ExpectTableColumnsToMatchOrderedList(
            column_list=[*spec_schema, *derived], severity=CRITICAL
        )
    ]
    rules += [
        gxe.ExpectColumnValuesToBeOfType(column=c, type_=GX_TYPES[type(t)], severity=CRITICAL)
        for c, t in spec_schema.items()
    ]
    return rules


def _not_null(columns: Iterable[str], severity: str = CRITICAL, mostly: float = 1.0) -> list:
    import great_expectations.expectations as gxe

    return [
        gxe.ExpectColumnValuesToNotBeNull(column=c, mostly=mostly, severity=severity)
        for c in columns
    ]


def _in_set(values: dict[str, Sequence[str]]) -> list:
    import great_expectations.expectations as gxe

    return [
        gxe.ExpectColumnValuesToBeInSet(column=c, value_set=list(v), severity=CRITICAL)
        for c, v in values.items()
    ]


def _between(bounds: dict[str, tuple[float | None, float | None]]) -> list:
    import great_expectations.expectations as gxe

    return [
        gxe.ExpectColumnValuesToBeBetween(column=c, min_value=lo, max_value=hi, severity=CRITICAL)
        for c, (lo, hi) in bounds.items()
    ]


def _unique(key: Sequence[str]) -> list:
    import great_expectations.expectations as gxe

    if len(key) == 1:
        return [gxe.ExpectColumnValuesToBeUnique(column=key[0], severity=CRITICAL)]
    return [gxe.ExpectCompoundColumnsToBeUnique(column_list=list(key), severity=CRITICAL)]


def _rows() -> list:
    import great_expectations.expectations as gxe

    return [
        gxe.ExpectTableRowCountToBeBetween(min_value=_p(ROWS_FLOOR), severity=CRITICAL),
        gxe.ExpectTableRowCountToBeBetween(
            min_value=_p(ROWS_WARN_MIN), max_value=_p(ROWS_WARN_MAX), severity=WARNING
        ),
    ]


def _freshness(freshness: Freshness) -> list:
    import great_expectations.expectations as gxe

    return [
        gxe.ExpectColumnMaxToBeBetween(
            column=freshness.column, min_value=_p(FRESH_SINCE), severity=freshness.severity
        )
    ]


def _rows_and_freshness(freshness: Freshness) -> list:
    return [*_rows(), *_freshness(freshness)]


# Silver tables are merged (upserts only): a version with fewer rows than the one before it
# means rows were lost. Growth above 2x in one run is unusual after the first days.
MERGED = RowChange(error_min_ratio=1.0, warn_min_ratio=1.0, warn_max_ratio=2.0)


def silver_customers() -> TableSuite:
    spec = SILVER_CUSTOMERS
    freshness = Freshness("updated_at", lag_days=7, severity=WARNING)
    return TableSuite(
        spec.name,
        (
            *_schema(dict(spec.schema), ()),
            *_not_null(spec.schema),
            *_in_set(
                {
                    "plan": PLANS,
                    "region": REGIONS,
                    "industry": INDUSTRIES,
                    "acquisition_channel": CHANNELS,
                }
            ),
            *_between({"seats": (1, None), "monthly_price": (0, None), "discount_pct": (0, 100)}),
            *_unique(spec.primary_key),
            *_rows_and_freshness(freshness),
        ),
        MERGED,
        freshness,
    )


def silver_usage_daily() -> TableSuite:
    spec = SILVER_USAGE_DAILY
    counts = ("active_users", "sessions", "events", "minutes", "features_used")
    # A day without any usage row means the day did not land: blocking.
    freshness = Freshness("usage_date", lag_days=0, severity=CRITICAL)
    return TableSuite(
        spec.name,
        (
            *_schema(dict(spec.schema), ()),
            *_not_null(spec.schema),
            *_between(dict.fromkeys(counts, (0, None))),
            *_unique(spec.primary_key),
            *_rows_and_freshness(freshness),
        ),
        MERGED,
        freshness,
    )


def silver_payments() -> TableSuite:
    import great_expectations.expectations as gxe

    spec = SILVER_PAYMENTS
    freshness = Freshness("attempted_at", lag_days=7, severity=WARNING)
    return TableSuite(
        spec.name,
        (
            *_schema(dict(spec.schema), ()),
            *_not_null(c for c in spec.schema if c != "failure_reason"),
            *_in_set({"status": PAYMENT_STATUSES, "failure_reason": FAILURE_REASONS}),
            *_between({"amount": (0, None), "attempt": (1, 4)}),
            gxe.ExpectColumnValuesToNotBeNull(
                column="failure_reason",
                row_condition='status=="failed"',
                condition_parser="pandas",
                severity=WARNING,
            ),
            *_unique(spec.primary_key),
            *_rows_and_freshness(freshness),
        ),
        MERGED,
        freshness,
    )


def silver_tickets() -> TableSuite:
    spec = SILVER_TICKETS
    nullable = {"resolved_at", "resolution_hours", "csat"}
    freshness = Freshness("updated_at", lag_days=14, severity=WARNING)
    return TableSuite(
        spec.name,
        (
            *_schema(dict(spec.schema), ()),
            *_not_null(c for c in spec.schema if c not in nullable),
            *_in_set(
                {"severity": SEVERITIES, "category": TICKET_CATEGORIES, "status": TICKET_STATUSES}
            ),
            *_between({"csat": (1, 5), "resolution_hours": (0, None)}),
            *_unique(spec.primary_key),
            *_rows_and_freshness(freshness),
        ),
        MERGED,
        freshness,
    )


def silver_default(flow: SilverFlow) -> TableSuite:
    """A silver table fed by a declared feed: the contract's schema, nulls, vocabularies,
    non-negative numbers and unique key; rows never shrink (merges only upsert)."""
    spec, feed = flow.silver, flow.feed
    numeric = [c for c, t in feed.columns.items() if t.is_numeric()]
    stamp = feed.timestamp_column
    freshness = Freshness(stamp or "_batch_id", lag_days=7, severity=WARNING)
    rules = [
        *_schema(dict(spec.schema), ()),
        *_not_null(c for c in feed.columns if c not in feed.nullable),
        *_in_set(dict(feed.categories)),
        *_between(dict.fromkeys(numeric, (0, None))),
        *_unique(spec.primary_key),
        *_rows(),
    ]
    if stamp is not None:
        rules += _freshness(freshness)
    return TableSuite(spec.name, tuple(rules), MERGED, freshness)


def training_set(use_case: UseCase) -> TableSuite:
    """The training set of a use case: schema, keys, ranges, label rate, row change, leakage.

    Leakage (exact where the spec names a tenure feature, see docs/training.md): a tenure
    feature is a deterministic function of the feature row's day, ``feature_date − start``. A
    row with as-of ``A`` may only use features up to ``A − 1``, so ``(A − start) − tenure``
    must be at least 1 day; 0 or less means a feature row from the as-of day or later was
    joined. ``event_timestamp`` must always be the as-of instant (midnight UTC of the as-of).
    """
    import great_expectations.expectations as gxe

    quality, label = use_case.quality, use_case.label.definition
    spec = use_case.table_spec(use_case.tables.training_set)
    features = use_case.features.features
    derived = (SIGNUP_DATE, LEAKAGE_MARGIN, EVENT_OFFSET) if quality.tenure else (EVENT_OFFSET,)
    required = [c for c in features if c not in quality.nullable]
    counts = [c for c, t in features.items() if t.is_integer()]
    amounts = [c for c, t in features.items() if t.is_float()]
    # One as-of date every `every_days`: the latest may trail the labels by that much.
    every = use_case.training.every_days
    freshness = Freshness("as_of_date", lag_days=every, severity=WARNING)
    rules: list[Expectation] = [
        *_schema(dict(spec.schema), derived),
        *_not_null([label.join_key, "as_of_date", "event_timestamp", label.column]),
        *_not_null(required, severity=WARNING, mostly=0.99),
        gxe.ExpectColumnValuesToBeInSet(column=label.column, value_set=[0, 1]),
        gxe.ExpectColumnMeanToBeBetween(
            column=label.column,
            min_value=quality.label_rate_error[0],
            max_value=quality.label_rate_error[1],
        ),
        gxe.ExpectColumnMeanToBeBetween(
            column=label.column,
            min_value=quality.label_rate_warn[0],
            max_value=quality.label_rate_warn[1],
            severity=WARNING,
        ),
        *_in_set(dict(use_case.encoding.categories)),
        *_between(dict(quality.ranges)),
        *_unique(spec.primary_key),
        *_between({EVENT_OFFSET: (0, 0)}),
        *_rows(),
        *_freshness(freshness),
    ]
    if quality.non_negative:
        rules += _between(dict.fromkeys(counts, (0, None)))
        rules += _between(dict.fromkeys(amounts, (-FLOAT_TOLERANCE, None)))
    if quality.tenure:
        rules += [
            *_between({LEAKAGE_MARGIN: (1, None)}),
            # Rows whose leakage cannot be verified (no start date or no tenure feature).
            *_not_null([LEAKAGE_MARGIN], mostly=0.95),
            *_not_null([LEAKAGE_MARGIN], severity=WARNING, mostly=0.999),
        ]
    return TableSuite(
        spec.name,
        tuple(rules),
        RowChange(error_min_ratio=0.5, warn_min_ratio=0.9, warn_max_ratio=1.5, min_rows=1),
        freshness,
        derived,
        freshness_table=label.table,
        leakage=Leakage(label.join_key, quality.tenure),
    )


SAAS_SUITES: dict[str, Callable[[], TableSuite]] = {
    SILVER_CUSTOMERS.name: silver_customers,
    SILVER_USAGE_DAILY.name: silver_usage_daily,
    SILVER_PAYMENTS.name: silver_payments,
    SILVER_TICKETS.name: silver_tickets,
}
"""The SaaS source's reviewed silver suites."""


def suites(use_case: UseCase) -> dict[str, Callable[[], TableSuite]]:
    """Suite builder of every table of a use case that is validated before training."""
    source = use_case.source.tables
    found: dict[str, Callable[[], TableSuite]] = {}
    if source.name == "saas":
        found |= SAAS_SUITES
    else:
        found |= {name: partial(silver_default, flow) for name, flow in source.flows.items()}
    found[use_case.tables.training_set] = partial(training_set, use_case)
    return found
