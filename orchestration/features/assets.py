"""Features domain: silver → ``features.*`` (daily) and ``labels.churn`` (daily, matured).

Both are daily-partitioned and rebuilt per partition by an atomic replace of those days, so
re-running a day never duplicates rows. Ranges run as one run, in chunks of days.
"""

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    BackfillPolicy,
    MaterializeResult,
    asset,
    multi_asset,
)

from lakehouse.features import FEATURE_TABLES, build_features
from lakehouse.labels import LABELS_CHURN, as_of_for, build_labels
from orchestration.metadata import table_metadata
from orchestration.partitions import commit_info, daily_partitions, day_chunks, partition_days
from orchestration.resources import LakehouseResource
from orchestration.settings import WORLD

# Days per feature build: memory grows with customers × (chunk + 90 days of history).
FEATURE_DAYS_PER_CHUNK = 31
_SILVER_INPUTS = [
    AssetKey(["silver", name])
    for name in (
        "customers",
        "customer_history",
        "subscription_events",
        "usage_daily",
        "invoices",
        "payments",
        "tickets",
    )
]


@multi_asset(
    specs=[
        AssetSpec(
            key=AssetKey(name.split(".")),
            group_name="features",
            deps=_SILVER_INPUTS,
            description=f"{name}: {spec.description} One row per active customer per day.",
            kinds={"delta", "polars"},
            partitions_def=daily_partitions,
        )
        for name, spec in FEATURE_TABLES.items()
    ],
    backfill_policy=BackfillPolicy.single_run(),
    can_subset=False,
)
def customer_features(context: AssetExecutionContext, lakehouse: LakehouseResource):
    """Build the four feature tables for the run's days, replacing those days' partitions."""
    lake = lakehouse.get()
    for days in day_chunks(partition_days(context), FEATURE_DAYS_PER_CHUNK):
        batch = build_features(lake, days)
        for name, frame in batch.tables.items():
            key = name.replace(".", "/")
            lake.replace(
                name,
                frame,
                partition={"feature_date": days},
                commit=commit_info(context, days, key),
            )
        context.log.info(f"features {days[0]}..{days[-1]}: {frame.height} rows per table")
    for name in FEATURE_TABLES:
        yield MaterializeResult(
            asset_key=AssetKey(name.split(".")), metadata=table_metadata(lake, name)
        )


@asset(
    key=["labels", "churn"],
    group_name="features",
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    deps=[AssetKey(["silver", "customers"]), AssetKey(["silver", "subscription_events"])],
    description=(
        "labels.churn: did the customer cancel within 30 days of the as-of date? Partition P "
        "writes the labels that matured on P (as-of date P - 29)."
    ),
    kinds={"delta", "polars"},
)
def churn_labels(context: AssetExecutionContext, lakehouse: LakehouseResource) -> MaterializeResult:
    lake = lakehouse.get()
    matured = partition_days(context)
    # Outcomes before the first landed day are unknown: those as-of dates get no labels.
    as_of = [as_of_for(day) for day in matured if as_of_for(day) >= WORLD.start_date]
    if not as_of:
        return MaterializeResult(metadata={"label_rows": 0, "skipped": "as-of before first day"})
    labels = build_labels(lake, as_of)
    lake.replace(
        LABELS_CHURN.name,
        labels,
        partition={"as_of_date": as_of},
        commit=commit_info(context, matured),
    )
    rate = float(labels["churned_30d"].mean() or 0.0) if labels.height else 0.0
    return MaterializeResult(
        metadata={
            "label_rows": labels.height,
            "churn_rate": rate,
            **table_metadata(lake, LABELS_CHURN.name),
        }
    )
