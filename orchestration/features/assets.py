"""Features domain: silver → a use case's ``features.*`` tables and its label table (daily).

Both are daily-partitioned and rebuilt per partition by an atomic replace of those days, so
re-running a day never duplicates rows. Ranges run as one run, in chunks of days.
"""

from collections.abc import Iterator
from datetime import UTC, datetime

from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    AssetSpec,
    MaterializeResult,
    asset,
    multi_asset,
)

from lakehouse.features.views import build_feature_batch
from models.usecase.spec import UseCase
from orchestration.metadata import table_key, table_metadata
from orchestration.partitions import commit_info, day_chunks, partition_days, source_partitions
from orchestration.resources import LakehouseResource
from orchestration.settings import first_day

# Days per feature build: memory grows with entities × (chunk + the longest window).
FEATURE_DAYS_PER_CHUNK = 31


def silver_keys(use_case: UseCase) -> list:
    return [table_key(name) for name in use_case.source.tables.silver]


def feature_assets(use_case: UseCase) -> AssetsDefinition:
    """One multi-asset writing every feature table of the use case for the run's days."""
    spec = use_case.features
    key = use_case.entity.join_key

    @multi_asset(
        name=f"{use_case.name}_features",
        specs=[
            AssetSpec(
                key=table_key(view.table),
                group_name=f"{use_case.name}_features",
                deps=silver_keys(use_case),
                description=f"{view.table}: {view.description} One row per active {key} per day.",
                kinds={"delta", "polars"},
                partitions_def=source_partitions(use_case.source),
            )
            for view in spec.views
        ],
        can_subset=False,
    )
    def _features(
        context: AssetExecutionContext, lakehouse: LakehouseResource
    ) -> Iterator[MaterializeResult]:
        lake = lakehouse.get()
        created = datetime.now(UTC)
        for days in day_chunks(partition_days(context), FEATURE_DAYS_PER_CHUNK):
            batch = build_feature_batch(
                spec.builder, lake, days, spec.views, spec.ratios, key, created_at=created
            )
            for name, frame in batch.tables.items():
                lake.replace(
                    name,
                    frame,
                    partition={"feature_date": days},
                    commit=commit_info(context, days, name.replace(".", "/")),
                )
            rows = next(iter(batch.tables.values())).height
            context.log.info(f"features {days[0]}..{days[-1]}: {rows} rows per table")
        for view in spec.views:
            yield MaterializeResult(
                asset_key=table_key(view.table), metadata=table_metadata(lake, view.table)
            )

    return _features


def label_asset(use_case: UseCase) -> AssetsDefinition:
    """The label table: partition ``P`` writes the labels that matured on ``P``."""
    definition = use_case.label.definition

    @asset(
        key=table_key(definition.table),
        group_name=f"{use_case.name}_features",
        partitions_def=source_partitions(use_case.source),
        deps=silver_keys(use_case),
        description=(
            f"{definition.table}: {definition.spec().description} Partition P writes the labels "
            f"that matured on P (as of P − {max(definition.maturity_days - 1, -1)})."
        ),
        kinds={"delta", "polars"},
    )
    def _labels(context: AssetExecutionContext, lakehouse: LakehouseResource) -> MaterializeResult:
        lake = lakehouse.get()
        matured = partition_days(context)
        # Outcomes before the first landed day are unknown: those as-of dates get no labels.
        start = first_day(use_case.source)
        as_of = [definition.as_of_for(d) for d in matured if definition.as_of_for(d) >= start]
        if not as_of:
            lake.create_if_missing(definition.table)
            return MaterializeResult(
                metadata={"label_rows": 0, "skipped": "as-of before first day"}
            )
        labels = use_case.label.builder.build(lake, definition, as_of)
        lake.replace(
            definition.table,
            labels,
            partition={"as_of_date": as_of},
            commit=commit_info(context, matured),
        )
        rate = float(labels[definition.column].mean() or 0.0) if labels.height else 0.0
        return MaterializeResult(
            metadata={
                "label_rows": labels.height,
                "positive_rate": rate,
                **table_metadata(lake, definition.table),
            }
        )

    return _labels
