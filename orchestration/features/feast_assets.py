"""Feature-store assets: ``feast apply`` (every use case), daily online materialization and the
training set of each use case.

No ``from __future__ import annotations`` here: Dagster reads the generated ``Config`` class
from the ``config`` parameter's annotation, which must be the class, not a string.
"""

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    MaterializeResult,
    MetadataValue,
    asset,
)
from feast import FeatureStore
from feast.errors import FeatureServiceNotFoundException

from feature_repo.online import materialize, online_store_name
from lakehouse.commit import CommitInfo
from lakehouse.features.training_set import build_training_set, default_first_as_of
from models.usecase.spec import UseCase
from orchestration.config import config_class, to_dataclass
from orchestration.metadata import table_key, table_metadata
from orchestration.partitions import partition_days, source_partitions
from orchestration.resources import FeatureStoreResource, LakehouseResource
from orchestration.settings import first_day

REGISTRY_KEY = AssetKey(["feast", "registry"])


def feature_keys(use_case: UseCase) -> list[AssetKey]:
    return [table_key(view.table) for view in use_case.features.views]


def feast_registry(use_cases: Iterable[UseCase]) -> AssetsDefinition:
    """``feast apply`` of ``feature_repo/``: every use case's entities, views and services."""
    deps = [key for use_case in use_cases for key in feature_keys(use_case)]

    @asset(
        key=REGISTRY_KEY,
        group_name="feature_store",
        deps=deps,
        description="`feast apply` of feature_repo/: every use case's entities, feature views "
        "and feature services.",
        kinds={"feast"},
    )
    def _registry(feature_store: FeatureStoreResource) -> MaterializeResult:
        feature_store.apply()
        store = feature_store.get()
        views = sorted(v.name for v in store.list_feature_views())
        services = sorted(s.name for s in store.list_feature_services())
        return MaterializeResult(
            metadata={
                "feature_views": ", ".join(views),
                "feature_services": ", ".join(services),
                "registry": _redacted(str(store.config.registry.path)),
            }
        )

    return _registry


def _redacted(path: str) -> str:
    """A registry path or URL without its password."""
    head, at, tail = path.rpartition("@")
    if not at or "://" not in head:
        return path
    scheme, _, credentials = head.partition("://")
    return f"{scheme}://{credentials.split(':')[0]}:***@{tail}"


def materialize_window(days: list) -> tuple[datetime, datetime]:
    """The event-timestamp window of the rows of feature days ``days``.

    Rows of feature day d carry event_timestamp = d + 1 00:00: the window of the run's days is
    (first 00:00, last + 1 00:01]. An explicit window (rather than Feast's "since the last
    run") keeps backfills and re-runs of a day correct.
    """
    start = datetime.combine(days[0], time(0, 0), tzinfo=UTC)
    end = datetime.combine(days[-1] + timedelta(days=1), time(0, 1), tzinfo=UTC)
    return start, end


def feast_online_store(use_case: UseCase) -> AssetsDefinition:
    """The latest feature values of the use case's views in the online store."""

    @asset(
        key=["feast", f"{use_case.name}_online_store"],
        group_name=f"{use_case.name}_features",
        partitions_def=source_partitions(use_case.source),
        deps=[*feature_keys(use_case), REGISTRY_KEY],
        description=(
            f"Latest {use_case.name} feature values in the online store: `feast materialize` "
            "of the partition days' feature rows."
        ),
        kinds={"feast"},
    )
    def _online(
        context: AssetExecutionContext, feature_store: FeatureStoreResource
    ) -> MaterializeResult:
        start, end = materialize_window(partition_days(context))
        feature_store.apply()  # idempotent, so a new view is never missed
        store = feature_store.get()
        views = [view.name for view in use_case.features.views]
        written = materialize(store, start, end, views)  # Redis: the direct writer
        return MaterializeResult(
            metadata={
                "materialized_from": start.isoformat(),
                "materialized_until": end.isoformat(),
                "feature_views": ", ".join(views),
                "online_store": online_store_name(store),
                "online_rows_written": sum(w.written for w in written),
            }
        )

    return _online


def _require_service(store: FeatureStore, service: str) -> None:
    """Fail with what to do when ``feast apply`` has not registered the service yet."""
    try:
        store.get_feature_service(service)
    except FeatureServiceNotFoundException:
        raise FeatureServiceNotFoundError(
            f"feature service {service!r} is not in the Feast registry yet: materialize the "
            f"{REGISTRY_KEY.to_user_string()} asset first (it is part of the training jobs, "
            "e.g. `scorehouse run <use case> weekly_retrain`)"
        ) from None


class FeatureServiceNotFoundError(RuntimeError):
    """The training set's feature service is not registered; the message says which asset to run."""


def training_set_key(use_case: UseCase) -> AssetKey:
    return table_key(use_case.tables.training_set)


def training_set(use_case: UseCase) -> AssetsDefinition:
    """The use case's training set: labels as the entity frame, point-in-time joined."""
    definition = use_case.label.definition
    settings_type = config_class(f"{use_case.name}_training_set_config", use_case.training)
    table = use_case.tables.training_set

    @asset(
        key=training_set_key(use_case),
        group_name=f"{use_case.name}_training",
        deps=[table_key(definition.table), REGISTRY_KEY, *feature_keys(use_case)],
        description=(
            f"{table}: {definition.table} as the entity frame, point-in-time joined to feature "
            f"service {use_case.features.service} through Feast; source versions in the commit."
        ),
        kinds={"delta", "feast"},
    )
    def _training_set(
        context: AssetExecutionContext,
        config: settings_type,  # type: ignore[valid-type]
        lakehouse: LakehouseResource,
        feature_store: FeatureStoreResource,
    ) -> MaterializeResult:
        settings = to_dataclass(config, type(use_case.training))
        lake = lakehouse.get()
        store = feature_store.get()
        _require_service(store, use_case.features.service)
        built = build_training_set(
            lake,
            store,
            labels=definition,
            spec=use_case.table_spec(table),
            feature_service=use_case.features.service,
            first_as_of=default_first_as_of(first_day(use_case.source), settings.history_days),
            every_days=settings.every_days,
            matured_by=_trained_for(context),
            window_days=settings.window_days,
        )
        versions = {**built.source_versions, definition.table: built.labels_version}
        commit = CommitInfo(
            run_id=context.run.run_id,
            asset_key=table.replace(".", "/"),
            extra={
                "feature_service": built.feature_service,
                "source_versions": versions,
                "rows": built.frame.height,
                "positives": int(built.frame[definition.column].sum()),
            },
        )
        result = lake.replace(table, built.frame, commit=commit)
        return MaterializeResult(
            metadata={
                "feature_service": built.feature_service,
                "source_versions": MetadataValue.json(versions),
                "label_rate": float(built.frame[definition.column].mean() or 0.0),
                "as_of_dates": built.frame["as_of_date"].n_unique(),
                "last_as_of": str(built.frame["as_of_date"].max()),
                "training_set_version": result.version,
                **table_metadata(lake, table),
            }
        )

    return _training_set


AS_OF_TAG = "scorehouse/as_of"
"""The run tag of a retrain's day (set by the retrain sensor and schedule): the training set
then holds only the labels matured by that day."""


def _trained_for(context: AssetExecutionContext) -> date | None:
    tag = context.run.tags.get(AS_OF_TAG)
    return date.fromisoformat(tag) if tag else None
