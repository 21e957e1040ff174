"""Churn features: the customer entity, four daily feature views over the Delta feature tables,
on-demand ratios, and the feature service ``churn_v1`` that models train and score with.

Every churn feature view reads a ``features.*`` Delta table (``lakehouse/features.py`` builds
them; one row per active customer per day, ``event_timestamp`` = midnight after the day it
summarises). ``customer_prediction`` serves the latest score and reasons of ``ml.predictions``.
"""

from datetime import timedelta

import pandas as pd
from feast import Entity, FeatureService, FeatureView, Field
from feast.on_demand_feature_view import on_demand_feature_view
from feast.types import Array, Float64, Int64, PrimitiveFeastType, String, UnixTimestamp
from feast.value_type import ValueType

from lakehouse.feast_delta import DeltaSource
from lakehouse.features import (
    ACCOUNT_FEATURES,
    ACTIVITY_FEATURES,
    BILLING_FEATURES,
    ON_DEMAND_FEATURES,
    SUPPORT_FEATURES,
)

customer = Entity(
    name="customer",
    join_keys=["customer_id"],
    value_type=ValueType.STRING,
    description="A SaaS customer account.",
)

# A day's row stands in for up to 3 days when later days are late or missing.
FEATURE_TTL = timedelta(days=3)
_FEAST_TYPES: dict[str, PrimitiveFeastType] = {"Float64": Float64, "Int64": Int64, "String": String}


def _view(name: str, columns: dict, description: str) -> FeatureView:
    """A daily feature view over ``features.<name>``, typed from the table's columns."""
    return FeatureView(
        name=name,
        entities=[customer],
        ttl=FEATURE_TTL,
        schema=[Field(name=c, dtype=_FEAST_TYPES[str(t)]) for c, t in columns.items()],
        source=DeltaSource(
            name=f"{name}_source",
            path=f"features/{name}",
            timestamp_field="event_timestamp",
            created_timestamp_column="created_timestamp",
        ),
        online=True,
        description=description,
    )


customer_activity = _view("customer_activity", ACTIVITY_FEATURES, "Usage windows and trends.")
customer_billing = _view("customer_billing", BILLING_FEATURES, "MRR, discounts, payment failures.")
customer_support = _view("customer_support", SUPPORT_FEATURES, "Tickets, resolution, CSAT.")
customer_account = _view(
    "customer_account", ACCOUNT_FEATURES, "Plan, seats, tenure, firmographics."
)


@on_demand_feature_view(
    sources=[customer_billing, customer_support, customer_account],
    schema=[Field(name=c, dtype=_FEAST_TYPES[str(t)]) for c, t in ON_DEMAND_FEATURES.items()],
    mode="pandas",
    description="Ratios computed at retrieval: payment failure rate, tickets per seat.",
)
def customer_ratios(inputs: pd.DataFrame) -> pd.DataFrame:
    attempts = inputs["payment_attempts_90d"].astype("float64")
    seats = inputs["seats"].astype("float64")
    out = pd.DataFrame(index=inputs.index)
    out["failed_payment_rate_90d"] = (inputs["failed_payments_90d"] / attempts).where(attempts > 0)
    out["tickets_per_seat_30d"] = (inputs["tickets_30d"] / seats).where(seats > 0)
    return out.astype("float64")


# What apps read: each customer's latest churn score with its reasons (ml.predictions). A
# re-scored day has a newer scored_at, which wins the tie on event_timestamp.
customer_prediction = FeatureView(
    name="customer_prediction",
    entities=[customer],
    ttl=timedelta(days=7),
    schema=[
        Field(name="score", dtype=Float64),
        Field(name="risk_band", dtype=String),
        Field(name="decision", dtype=String),
        Field(name="reason_codes", dtype=Array(String)),
        Field(name="model_version", dtype=String),
        Field(name="scored_at", dtype=UnixTimestamp),
    ],
    source=DeltaSource(
        name="customer_prediction_source",
        path="ml/predictions",
        timestamp_field="event_timestamp",
        created_timestamp_column="scored_at",
    ),
    online=True,
    description="Latest churn score, risk band, decision and reason codes per customer.",
)

churn_v1 = FeatureService(
    name="churn_v1",
    features=[
        customer_activity,
        customer_billing,
        customer_support,
        customer_account,
        customer_ratios,
    ],
    description="Every feature of the churn model, version 1.",
)
