"""Scoring domain, per use case: daily batch scores of every active entity, explained.

``ml/<uc>_predictions`` resolves the models once at run start, from one read of the aliases:
the ``champion`` and the model in ``shadow`` (if any). Each of the run's days is scored by the
champion (served: the predictions and explanations tables) and then by the shadow model (the
shadow tables, never served), both through the same pinned feature versions, so their rows are
paired (``models.lifecycle.shadow``); each gets its own scoring-runs record, the commit point
(``<run>:<day>`` for the champion, ``<run>:<day>:shadow``). A promotion therefore takes effect
between two scoring runs, never within one. Configured with another ``model_alias``, the run
scores only that alias, into the shadow tables. ``feast/<uc>_prediction_online`` puts the
latest champion score and reasons of every entity in the online store for apps.

No ``from __future__ import annotations``: the generated ``Config`` class is an annotation.
"""

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import polars as pl
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    MaterializeResult,
    MetadataValue,
    asset,
    multi_asset,
)

from lakehouse.commit import code_version
from lakehouse.config import scorehouse_home
from models.lifecycle.registry import SHADOW, ModelRegistry
from models.plots import markdown_image
from models.scoring.batch import (
    ScoringError,
    ScoringModel,
    ScoringRun,
    load_model,
    pin_feature_versions,
    score_day,
)
from models.scoring.online import served_rows, write_online
from models.scoring.plots import write_run_plots
from models.scoring.runs import SERVING_ALIAS, current_predictions
from models.usecase.spec import UseCase
from orchestration.config import config_class, to_dataclass
from orchestration.features.feast_assets import feature_keys
from orchestration.metadata import table_key, table_metadata
from orchestration.partitions import partition_days, source_partitions
from orchestration.resources import FeatureStoreResource, LakehouseResource, ModelRegistryResource
from orchestration.training.gate import gate_key

ALIAS_FIELD = "model_alias"


def prediction_keys(use_case: UseCase) -> list[AssetKey]:
    tables = use_case.tables.scoring
    return [table_key(t) for t in (tables.predictions, tables.explanations, tables.scoring_runs)]


def predictions_asset(use_case: UseCase) -> AssetsDefinition:
    """Score the run's days with the configured alias; one commit per table per day."""
    policy_type = config_class(
        f"{use_case.name}_scoring_config", use_case.scoring, extra={ALIAS_FIELD: SERVING_ALIAS}
    )
    tables = use_case.tables.scoring
    descriptions = [
        f"{tables.predictions}: every active entity's score, band, decision and top reason "
        "codes, with the model, data versions and run that produced it.",
        f"{tables.explanations}: the full SHAP vector and base value per prediction.",
        f"{tables.scoring_runs}: one row per completed scoring run (the latest champion run "
        "of a day is current).",
    ]

    @multi_asset(
        name=f"{use_case.name}_predictions",
        specs=[
            AssetSpec(
                key=key,
                group_name=f"{use_case.name}_scoring",
                deps=[*feature_keys(use_case), gate_key(use_case)],
                description=description,
                kinds={"delta", "xgboost"},
                partitions_def=source_partitions(use_case.source),
            )
            for key, description in zip(prediction_keys(use_case), descriptions, strict=True)
        ],
        can_subset=False,
    )
    def _predictions(
        context: AssetExecutionContext,
        config: policy_type,  # type: ignore[valid-type]
        lakehouse: LakehouseResource,
        feature_store: FeatureStoreResource,
        model_registry: ModelRegistryResource,
    ) -> Iterator[MaterializeResult]:
        lake = lakehouse.get()
        alias = getattr(config, ALIAS_FIELD)
        policy = to_dataclass(config, type(use_case.scoring), drop=(ALIAS_FIELD,))
        # Resolved once: a promotion during the run does not mix models within it.
        model, shadow = resolve_models(model_registry.get(use_case), alias)
        versions = pin_feature_versions(lake, use_case.tables.feature_tables)
        store = feature_store.get(pins=versions)
        context.log.info(
            f"scoring with {model.name} v{model.version} ({alias})"
            + (f" and v{shadow.version} in shadow" if shadow else "")
            + f"; {versions}"
        )
        runs, shadow_rows = [], 0
        for day in partition_days(context):
            for scored in (model, shadow):
                if scored is None:
                    continue
                suffix = "" if scored.served else f":{scored.alias}"
                run = ScoringRun(
                    scoring_run_id=f"{context.run_id}:{day.isoformat()}{suffix}",
                    as_of=day,
                    dagster_run_id=context.run_id,
                    code_version=code_version(),
                    source_versions=versions,
                    scored_at=datetime.now(UTC),
                )
                result = score_day(
                    lake,
                    store,
                    use_case,
                    scored,
                    run,
                    policy,
                    on_chunk=lambda done, total, day=day, m=scored: context.log.info(
                        f"{day}: {m.alias} v{m.version} scored {done}/{total}"
                    ),
                )
                if scored is model:
                    runs.append(result)
                else:
                    shadow_rows += result.rows
        last = runs[-1]
        folder = (
            scorehouse_home()
            / "reports"
            / "scoring"
            / use_case.name
            / last.run.scoring_run_id.replace(":", "_")
        )
        plots = write_run_plots(
            folder,
            last.sample_scores,
            last.sample_shap,
            last.sample_inputs,
            use_case.encoding.names,
            policy.thresholds,
        )
        predictions_table, explanations_table = tables.outputs(model.served)
        summary = {
            "model_version": model.version,
            "model_alias": alias,
            "lifecycle": "champion (served)" if model.served else f"{alias} (shadow, not served)",
            "written_to": f"{predictions_table}, {explanations_table}",
            "model_sha256": model.sha256,
            "shadow_version": shadow.version if shadow else "none",
            "shadow_rows": shadow_rows,
            "scored_rows": sum(r.rows for r in runs),
            "scoring_runs": ", ".join(r.run.scoring_run_id for r in runs),
            "source_versions": MetadataValue.json(versions),
            "plots_folder": MetadataValue.path(str(folder)),
            "plots": MetadataValue.md(
                "\n\n".join(markdown_image(png, name) for name, png in plots.items())
            ),
        }
        keys = prediction_keys(use_case)
        yield MaterializeResult(
            asset_key=keys[0], metadata={**summary, **table_metadata(lake, predictions_table)}
        )
        yield MaterializeResult(
            asset_key=keys[1],
            metadata={"model_alias": alias, **table_metadata(lake, explanations_table)},
        )
        yield MaterializeResult(
            asset_key=keys[2],
            metadata={"model_alias": alias, **table_metadata(lake, tables.scoring_runs)},
        )

    return _predictions


def resolve_models(registry: ModelRegistry, alias: str) -> tuple[ScoringModel, ScoringModel | None]:
    """The run's model for ``alias`` and, when that is the champion, the model in shadow —
    from one read of the aliases, so both belong to the same lifecycle state."""
    aliases = registry.alias_versions()
    if alias not in aliases:
        raise ScoringError(
            f"no model version has the alias {alias!r} in model {registry.model_name}: train "
            "a candidate and let the promotion gate decide it before scoring"
        )
    model = replace(load_model(registry, version=aliases[alias]), alias=alias)
    if alias != SERVING_ALIAS or aliases.get(SHADOW) in (None, aliases[alias]):
        return model, None
    return model, replace(load_model(registry, version=aliases[SHADOW]), alias=SHADOW)


def prediction_online_asset(use_case: UseCase) -> AssetsDefinition:
    """The latest score, band and reasons per entity in the online store (Feast)."""
    view = f"{use_case.name}_prediction"

    @asset(
        key=["feast", f"{use_case.name}_prediction_online"],
        group_name=f"{use_case.name}_scoring",
        partitions_def=source_partitions(use_case.source),
        deps=[prediction_keys(use_case)[0]],
        description=f"Latest {use_case.name} score, band and reasons per entity online (Feast).",
        kinds={"feast", "sqlite"},
    )
    def _online(
        context: AssetExecutionContext,
        lakehouse: LakehouseResource,
        feature_store: FeatureStoreResource,
    ) -> MaterializeResult:
        # Written from the recorded current runs, not materialized from the raw table: rows of
        # a run that died before its scoring-runs record are never served.
        days = partition_days(context)
        lake, tables = lakehouse.get(), use_case.tables.scoring
        key = tables.join_key
        scored = (
            current_predictions(lake, tables)
            .filter(pl.col("as_of_date").is_in(days))
            .select(key)
            .unique()
            .collect()
        )
        rows = served_rows(lake, tables, scored[key].to_list())
        feature_store.apply()
        written = write_online(feature_store.get(), tables, rows)
        return MaterializeResult(
            metadata={
                "feature_view": view,
                "entities_written": written,
                "days": f"{days[0]}..{days[-1]}",
                "scoring_runs": MetadataValue.json(sorted(set(rows["scoring_run_id"].to_list()))),
            }
        )

    return _online


def scoring_assets(use_case: UseCase) -> list[AssetsDefinition]:
    return [predictions_asset(use_case), prediction_online_asset(use_case)]
