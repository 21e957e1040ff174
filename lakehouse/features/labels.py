"""``labels.<use case>``: did an event happen within a horizon of an as-of date? Matured only.

For as-of date ``A`` the population is every entity *at risk* at the start of ``A`` (its span
started before ``A`` and its event, if any, did not happen before ``A``); the label is 1 when the
event falls in ``[A, A + horizon − 1]``. The label of ``A`` is only written once it has matured,
``maturity_days`` after ``A`` (at least the horizon: a label read earlier could still change), so
the daily partition ``P`` writes the labels of ``A = P − (maturity_days − 1)``. The entity
timestamp is midnight UTC at the start of ``A``: a point-in-time join then sees features up to
``A − 1``.

A *label builder* says where the spans come from: ``SaasCancellations`` (a SaaS customer's
subscription, the event is its cancellation) or ``Inactivity`` (an event log: the event is "no
activity for the horizon").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Protocol

import polars as pl

from lakehouse.catalog import TIMESTAMP, TableSpec
from lakehouse.ingest.saas import SILVER_CUSTOMERS, SILVER_SUBSCRIPTION_EVENTS
from lakehouse.storage import Lakehouse

AS_OF = "as_of_date"


@dataclass(frozen=True)
class LabelDefinition:
    """What a use case's label table holds and when a label has matured."""

    table: str
    column: str
    join_key: str
    horizon_days: int
    maturity_days: int
    event_date_column: str = "event_date"
    description: str = ""

    def __post_init__(self) -> None:
        if self.horizon_days < 0 or (self.horizon_days == 0) != (self.maturity_days == 0):
            raise ValueError(
                f"{self.table}: horizon_days must be >= 1 (or 0 with maturity_days 0 for a label "
                f"given by the data), got {self.horizon_days} and {self.maturity_days}"
            )
        if self.maturity_days < self.horizon_days:
            raise ValueError(
                f"{self.table}: maturity_days {self.maturity_days} < horizon_days "
                f"{self.horizon_days} (rule: a label is read only after its horizon has passed)"
            )

    def spec(self) -> TableSpec:
        return TableSpec(
            name=self.table,
            schema={
                self.join_key: pl.String(),
                AS_OF: pl.Date(),
                "event_timestamp": TIMESTAMP,
                self.column: pl.Int64(),
                self.event_date_column: pl.Date(),
                "matured_on": pl.Date(),
            },
            description=self.description
            or f"Matured {self.horizon_days}-day outcome per {self.join_key} and as-of date.",
            partition_by=(AS_OF,),
            primary_key=(self.join_key, AS_OF),
        )

    @property
    def given(self) -> bool:
        """True for a label given by the data (known at delivery, nothing to wait for)."""
        return self.maturity_days == 0

    def as_of_for(self, matured_on: date) -> date:
        """The as-of date whose labels mature on ``matured_on`` (a given label: the next day,
        the first instant its delivery's features are known)."""
        return matured_on - timedelta(days=self.maturity_days - 1)

    def matured_on(self, as_of: date) -> date:
        return as_of + timedelta(days=self.maturity_days - 1)


class LabelBuilder(Protocol):
    """Builds the labels of as-of dates from silver tables."""

    def build(
        self, lake: Lakehouse, definition: LabelDefinition, as_of: Sequence[date]
    ) -> pl.DataFrame:
        """The label rows of ``as_of`` (each must have matured), in the definition's schema."""
        ...


def span_labels(
    spans: pl.DataFrame, definition: LabelDefinition, as_of: Sequence[date]
) -> pl.DataFrame:
    """Labels from spans: ``spans`` has the join key, ``start_date`` and ``event_date`` (null:
    no event yet), and optionally ``end_date``, the day the span ended without the event (null:
    still running; e.g. a loan repaid). At risk on ``A``: started before ``A``, not ended and no
    event before ``A``."""
    dates = pl.DataFrame({AS_OF: list(as_of)}, schema={AS_OF: pl.Date()})
    window_end = pl.col(AS_OF) + pl.duration(days=definition.horizon_days - 1)
    happened = pl.col("event_date") <= window_end
    running = pl.lit(True)
    if "end_date" in spans.columns:
        running = pl.col("end_date").is_null() | (pl.col("end_date") >= pl.col(AS_OF))
    return (
        spans.join(dates, how="cross")
        .filter(
            (pl.col("start_date") < pl.col(AS_OF))
            & running
            & (pl.col("event_date").is_null() | (pl.col("event_date") >= pl.col(AS_OF)))
        )
        .with_columns(
            pl.col(AS_OF).cast(TIMESTAMP).alias("event_timestamp"),
            happened.fill_null(False).cast(pl.Int64).alias(definition.column),
            pl.when(happened).then(pl.col("event_date")).alias(definition.event_date_column),
            (pl.col(AS_OF) + pl.duration(days=definition.maturity_days - 1)).alias("matured_on"),
        )
        .select(list(definition.spec().schema))
        .sort(AS_OF, definition.join_key)
    )


@dataclass(frozen=True)
class SaasCancellations:
    """Label builder ``saas_cancellations``: a customer's subscription from signup to cancel."""

    def build(
        self, lake: Lakehouse, definition: LabelDefinition, as_of: Sequence[date]
    ) -> pl.DataFrame:
        last = max(as_of) + timedelta(days=definition.horizon_days - 1)
        cancels = (
            lake.scan(SILVER_SUBSCRIPTION_EVENTS.name)
            .filter((pl.col("event_type") == "cancel") & (pl.col("event_date") <= last))
            .group_by("customer_id")
            .agg(pl.col("event_date").min().alias("event_date"))
        )
        spans = (
            lake.scan(SILVER_CUSTOMERS.name)
            .select("customer_id", pl.col("signup_date").alias("start_date"))
            .join(cancels, on="customer_id", how="left")
            .rename({"customer_id": definition.join_key})
            .collect()
        )
        return span_labels(spans, definition, as_of)
