"""Feature-store assets: ``feast apply``, daily online materialization, ``ml.training_set``."""

from datetime import UTC, datetime, time, timedelta

from dagster import (
    AssetExecutionContext,
    AssetKey,
    BackfillPolicy,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
)

from lakehouse.commit import CommitInfo
from lakehouse.features import FEATURE_TABLES
from lakehouse.tables import ML_TRAINING_SET
from lakehouse.training_set import FEATURE_SERVICE, build_training_set, default_first_as_of
from orchestration.metadata import table_metadata
from orchestration.partitions import daily_partitions, partition_days
from orchestration.resources import FeatureStoreResource, LakehouseResource
from orchestration.settings import WORLD

_FEATURE_KEYS = [AssetKey(name.split(".")) for name in FEATURE_TABLES]


@asset(
    key=["feast", "registry"],
    group_name="feature_store",
    deps=_FEATURE_KEYS,
    description="`feast apply` of feature_repo/: entity, feature views, on-demand views, services.",
    kinds={"feast"},
)
def feast_registry(feature_store: FeatureStoreResource) -> MaterializeResult:
    feature_store.apply()
    store = feature_store.get()
    views = sorted(v.name for v in store.list_feature_views())
    services = sorted(s.name for s in store.list_feature_services())
    odfvs = sorted(v.name for v in store.list_on_demand_feature_views())
    return MaterializeResult(
        metadata={
            "feature_views": ", ".join(views),
            "on_demand_feature_views": ", ".join(odfvs),
            "feature_services": ", ".join(services),
            "registry": MetadataValue.path(str(store.config.registry.path)),
        }
    )


@asset(
    key=["feast", "online_store"],
    group_name="feature_store",
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    deps=_FEATURE_KEYS,
    description=(
        "Latest feature values in the SQLite online store: `feast apply` (idempotent, so a new "
        "view is never missed) then `feast materialize` of the partition days' feature rows."
    ),
    kinds={"feast", "sqlite"},
)
def feast_online_store(
    context: AssetExecutionContext, feature_store: FeatureStoreResource
) -> MaterializeResult:
    days = partition_days(context)
    # Rows of feature day d carry event_timestamp = d + 1 00:00: the window of the run's days is
    # (first 00:00, last + 1 00:01]. An explicit window (rather than Feast's "since the last
    # run") keeps backfills and re-runs of a day correct.
    start = datetime.combine(days[0], time(0, 0), tzinfo=UTC)
    end = datetime.combine(days[-1] + timedelta(days=1), time(0, 1), tzinfo=UTC)
    feature_store.apply()
    store = feature_store.get()
    store.materialize(start_date=start, end_date=end)
    return MaterializeResult(
        metadata={
            "materialized_from": start.isoformat(),
            "materialized_until": end.isoformat(),
            "online_store": MetadataValue.path(str(store.config.online_store.path)),
        }
    )


class TrainingSetConfig(Config):
    """Which matured labels become training rows."""

    history_days: int = 30
    """Skip as-of dates closer than this to the first landed day (windows not yet filled)."""
    every_days: int = 7
    """Keep one as-of date per this many days (weekly snapshots: less repeated information)."""
    feature_service: str = FEATURE_SERVICE


@asset(
    key=["ml", "training_set"],
    group_name="training",
    deps=[AssetKey(["labels", "churn"]), AssetKey(["feast", "registry"]), *_FEATURE_KEYS],
    description=(
        "ml.training_set: labels.churn as the entity frame, point-in-time joined to feature "
        "service churn_v1 through Feast; source versions in the commit metadata."
    ),
    kinds={"delta", "feast"},
)
def training_set(
    context: AssetExecutionContext,
    config: TrainingSetConfig,
    lakehouse: LakehouseResource,
    feature_store: FeatureStoreResource,
) -> MaterializeResult:
    lake = lakehouse.get()
    built = build_training_set(
        lake,
        feature_store.get(),
        first_as_of=default_first_as_of(WORLD.start_date, config.history_days),
        every_days=config.every_days,
        feature_service=config.feature_service,
    )
    versions = {**built.source_versions, "labels.churn": built.labels_version}
    commit = CommitInfo(
        run_id=context.run_id,
        asset_key="ml/training_set",
        extra={
            "feature_service": built.feature_service,
            "source_versions": versions,
            "rows": built.frame.height,
            "positives": int(built.frame["churned_30d"].sum()),
        },
    )
    result = lake.replace(ML_TRAINING_SET.name, built.frame, commit=commit)
    return MaterializeResult(
        metadata={
            "feature_service": built.feature_service,
            "source_versions": MetadataValue.json(versions),
            "label_rate": float(built.frame["churned_30d"].mean() or 0.0),
            "as_of_dates": built.frame["as_of_date"].n_unique(),
            "training_set_version": result.version,
            **table_metadata(lake, ML_TRAINING_SET.name),
        }
    )
