"""Scoring domain, per use case: daily batch scores of every active entity, explained.

``ml/<uc>_predictions`` is a graph of three steps, fanned out over entity buckets (a stable hash
of the id, ``models/scoring/buckets.py``):

1. ``<uc>_scoring_plan`` resolves the model alias (``champion`` by default) to one version, pins
   the feature tables' versions and fixes the run's identity, once for the whole run, then emits
   one plan per bucket (``buckets`` in the run's config; default ``SCOREHOUSE_SCORING_BUCKETS``);
2. ``<uc>_score_bucket`` (one step per bucket, in parallel on the profile's executor) scores its
   entities for each of the run's days and appends explanations and predictions;
3. ``<uc>_scoring_record`` writes one scoring-runs row per day for all buckets, and the plots.

The plan resolves the ``champion`` and the model in ``shadow`` (if any) from one read of the
aliases. Every bucket scores its entities with both, from the same pinned feature versions, so
their rows are paired (``models.lifecycle.shadow``): the champion into the served tables, the
shadow model into the shadow tables (never served). The record step writes one scoring-runs row
per day and alias, the commit point: ``<run>:<day>`` for the champion, ``<run>:<day>:shadow``
for the shadow model. A promotion therefore takes effect between two scoring runs, never within
one. Configured with another ``model_alias``, the run scores only that alias, into the shadow
tables. Steps pass only small JSON documents (``StepOutputIOManager``); the data stays in Delta
tables.
``feast/<uc>_prediction_online`` puts the latest score and reasons of every entity in the online
store for apps.

No ``from __future__ import annotations``: the generated ``Config`` class is an annotation.
"""

import inspect
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import polars as pl
from dagster import (
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetOut,
    AssetsDefinition,
    Backoff,
    ConfigMapping,
    DynamicOut,
    DynamicOutput,
    In,
    Jitter,
    MaterializeResult,
    MetadataValue,
    Nothing,
    OpExecutionContext,
    Out,
    Output,
    RetryPolicy,
    asset,
    graph_multi_asset,
    op,
)

from feature_repo.online import online_store_name
from lakehouse.commit import code_version
from lakehouse.config import scorehouse_home
from models.lifecycle.registry import SHADOW, ModelRegistry
from models.plots import markdown_image
from models.scoring.batch import (
    ScoringError,
    ScoringModel,
    ScoringRun,
    check_model_features,
    load_model,
    pin_feature_versions,
    population,
)
from models.scoring.buckets import BucketScores, record_bucketed_run, score_bucket
from models.scoring.online import served_rows, write_online
from models.scoring.plots import write_run_plots
from models.scoring.policy import ScoringPolicy
from models.scoring.runs import SERVING_ALIAS, current_predictions
from models.usecase.spec import UseCase
from orchestration.config import config_class, to_dataclass
from orchestration.features.feast_assets import feature_keys
from orchestration.metadata import table_key, table_metadata
from orchestration.partitions import partition_days, source_partitions
from orchestration.profiles import load_profile
from orchestration.resources import (
    STEP_IO,
    FeatureStoreResource,
    LakehouseResource,
    ModelRegistryResource,
)
from orchestration.training.gate import gate_key

ALIAS_FIELD = "model_alias"
BUCKETS_FIELD = "buckets"
PLOT_SAMPLE = 5_000
BUCKET_RETRY = RetryPolicy(
    max_retries=2, delay=2.0, backoff=Backoff.EXPONENTIAL, jitter=Jitter.FULL
)
"""A bucket that failed (a lost connection, an object store restarted) runs again; it resumes:
tables it already committed to are not written twice (``models.scoring.buckets``)."""


def prediction_keys(use_case: UseCase) -> list[AssetKey]:
    tables = use_case.tables.scoring
    return [table_key(t) for t in (tables.predictions, tables.explanations, tables.scoring_runs)]


def predictions_asset(use_case: UseCase) -> AssetsDefinition:
    """Score the run's days with the configured alias, fanned out over entity buckets."""
    policy_type = config_class(
        f"{use_case.name}_scoring_config",
        use_case.scoring,
        extra={ALIAS_FIELD: SERVING_ALIAS, BUCKETS_FIELD: load_profile().scoring_buckets},
    )
    plan, score, record = _scoring_ops(use_case, policy_type)
    tables = use_case.tables.scoring
    descriptions = [
        f"{tables.predictions}: every active entity's score, band, decision and top reason "
        "codes, with the model, data versions and run that produced it.",
        f"{tables.explanations}: the full SHAP vector and base value per prediction.",
        f"{tables.scoring_runs}: one row per completed scoring run and day, for all of its "
        "entity buckets (the latest champion run of a day is current).",
    ]
    outputs = ["predictions", "explanations", "scoring_runs"]
    upstream = {_input_name(key): key for key in [*feature_keys(use_case), gate_key(use_case)]}

    def compose(**after: Any) -> dict[str, Any]:
        buckets = plan(after=list(after.values())).map(score).collect()
        predictions, explanations, scoring_runs = record(buckets)
        return {
            "predictions": predictions,
            "explanations": explanations,
            "scoring_runs": scoring_runs,
        }

    compose.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY) for n in upstream]
    )
    compose.__name__ = f"{use_case.name}_predictions"
    return graph_multi_asset(
        name=f"{use_case.name}_predictions",
        outs={
            name: AssetOut(key=key, description=description, kinds={"delta", "xgboost"})
            for name, key, description in zip(
                outputs, prediction_keys(use_case), descriptions, strict=True
            )
        },
        ins={name: AssetIn(key=key, dagster_type=Nothing) for name, key in upstream.items()},
        partitions_def=source_partitions(use_case.source),
        group_name=f"{use_case.name}_scoring",
        can_subset=False,
        config=ConfigMapping(
            config_fn=lambda values: {plan.name: {"config": values}},
            config_schema=policy_type.to_config_schema(),
        ),
    )(compose)


def _input_name(key: AssetKey) -> str:
    return "__".join(key.path)


def _scoring_ops(use_case: UseCase, policy_type: type) -> tuple[Any, Any, Any]:
    """The plan, bucket and record ops of one use case's scoring graph."""
    name = use_case.name

    @op(
        name=f"{name}_scoring_plan",
        ins={"after": In(Nothing)},
        out=DynamicOut(io_manager_key=STEP_IO),
        description="Resolve the model and data versions once; one plan per entity bucket.",
    )
    def _plan(
        context: OpExecutionContext,
        config: policy_type,  # type: ignore[valid-type]
        lakehouse: LakehouseResource,
        feature_store: FeatureStoreResource,
        model_registry: ModelRegistryResource,
    ) -> Iterator[DynamicOutput]:
        lake = lakehouse.get()
        alias = getattr(config, ALIAS_FIELD)
        buckets = int(getattr(config, BUCKETS_FIELD))
        if buckets < 1:
            raise ValueError(f"{BUCKETS_FIELD} must be >= 1, got {buckets}")
        policy = to_dataclass(config, type(use_case.scoring), drop=(ALIAS_FIELD, BUCKETS_FIELD))
        # Resolved once: a promotion during the run does not mix models within it.
        model, shadow = resolve_models(model_registry.get(use_case), alias)
        versions = pin_feature_versions(lake, use_case.tables.feature_tables)
        store = feature_store.get(pins=versions)
        for scored in (model, shadow):
            if scored is not None:
                check_model_features(scored, store, use_case.encoding)
        days = partition_days(context)
        for day in days:  # an empty day fails the run here, before anything is written
            population(lake, use_case, day, versions)
        # Buckets append concurrently: the tables must exist before (creating them would race).
        for table in (
            *use_case.tables.scoring.outputs(model.served),
            *(use_case.tables.scoring.outputs(False) if shadow else ()),
            use_case.tables.scoring.scoring_runs,
        ):
            lake.create_if_missing(table)
        plan = {
            "dagster_run_id": context.run_id,
            "model_version": model.version,
            "model_alias": alias,
            "model_sha256": model.sha256,
            "source_versions": versions,
            "policy": policy.to_json(),
            "days": [d.isoformat() for d in days],
            "scored_at": datetime.now(UTC).isoformat(),
            "started_at": datetime.now(UTC).isoformat(),
            "code_version": code_version(),
            "buckets": buckets,
            "shadow": {"model_version": shadow.version, "model_sha256": shadow.sha256}
            if shadow
            else None,
        }
        context.log.info(
            f"scoring with {model.name} v{model.version} ({alias})"
            + (f" and v{shadow.version} in {SHADOW}" if shadow else "")
            + f" in {buckets} buckets; {versions}"
        )
        for bucket in range(buckets):
            yield DynamicOutput({**plan, "bucket": bucket}, mapping_key=f"bucket_{bucket}")

    @op(
        name=f"{name}_score_bucket",
        out=Out(io_manager_key=STEP_IO),
        retry_policy=BUCKET_RETRY,
        description="Score one entity bucket of every day of the run (appends, one commit per "
        "table and day).",
    )
    def _score(
        context: OpExecutionContext,
        plan: dict,
        lakehouse: LakehouseResource,
        feature_store: FeatureStoreResource,
        model_registry: ModelRegistryResource,
    ) -> dict:
        lake = lakehouse.get()
        registry = model_registry.get(use_case)
        store = feature_store.get(pins=plan["source_versions"])
        policy = ScoringPolicy(**plan["policy"])
        bucket, buckets = plan["bucket"], plan["buckets"]
        # An attempt after a failure (a retry, or a re-execution of the run) resumes.
        resume = context.retry_number > 0 or context.run_id != plan["dagster_run_id"]
        done: dict[str, list] = {"results": [], "shadow_results": []}
        # The champion first, then the shadow model on the same entities and feature versions.
        for model, field in _planned_models(plan, registry):
            for run in _planned_runs(plan, model):
                scored = score_bucket(
                    lake,
                    store,
                    use_case,
                    model,
                    run,
                    policy,
                    bucket,
                    buckets,
                    resume=resume,
                    sample_rows=-(-PLOT_SAMPLE // buckets) if model.served else 0,
                )
                context.log.info(
                    f"{run.as_of} {model.alias} v{model.version} bucket {bucket}/{buckets}: "
                    f"{scored.rows} rows"
                    + (" (already committed by an earlier attempt)" if scored.resumed else "")
                )
                done[field].append(scored.to_json())
        return {"plan": {k: v for k, v in plan.items() if k != "bucket"}, **done}

    @op(
        name=f"{name}_scoring_record",
        out={n: Out(Nothing) for n in ("predictions", "explanations", "scoring_runs")},
        description="One scoring-runs row per day for all buckets; the run's plots.",
    )
    def _record(
        context: OpExecutionContext,
        buckets: list,
        lakehouse: LakehouseResource,
        model_registry: ModelRegistryResource,
    ) -> Iterator[Output]:
        lake = lakehouse.get()
        plan = _one_plan(buckets)
        policy = ScoringPolicy(**plan["policy"])
        started = datetime.fromisoformat(plan["started_at"])
        scored: dict[str, tuple[ScoringModel, list[BucketScores]]] = {}
        # One record per alias and day: the champion's first (it is served), then the shadow's.
        for model, field in _planned_models(plan, model_registry.get(use_case)):
            results = [BucketScores.from_json(r) for done in buckets for r in done[field]]
            runs = _planned_runs(plan, model)
            record_bucketed_run(lake, use_case, model, runs, policy, results, started)
            scored[field] = (model, results)
        model, results = scored["results"]
        shadow = scored.get("shadow_results")
        yield from _outputs(
            use_case, lake, model, plan, _planned_runs(plan, model), results, policy, shadow
        )

    return _plan, _score, _record


def _one_plan(buckets: list[dict]) -> dict:
    """The plan all buckets scored with (they must agree: one run, one model, one snapshot)."""
    if not buckets:
        raise ValueError("no bucket reported a result")
    plans = [done["plan"] for done in buckets]
    if any(p != plans[0] for p in plans[1:]):
        raise ValueError("the buckets of one scoring run were given different plans")
    return plans[0]


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


def _planned_models(plan: dict, registry: Any) -> list[tuple[ScoringModel, str]]:
    """The run's model and its shadow model (if planned), each with its results field."""
    models = [(_planned_model(plan, registry), "results")]
    if plan.get("shadow"):
        shadow = {**plan, **plan["shadow"], "model_alias": SHADOW}
        models.append((_planned_model(shadow, registry), "shadow_results"))
    return models


def _planned_model(plan: dict, registry: Any) -> ScoringModel:
    """The planned model version, labelled with the run's alias, checked to be the same model."""
    model = replace(load_model(registry, version=plan["model_version"]), alias=plan["model_alias"])
    if model.sha256 != plan["model_sha256"]:
        raise ValueError(
            f"model {model.name} v{model.version} changed since the run was planned "
            f"(sha256 {model.sha256[:12]}… != {plan['model_sha256'][:12]}…)"
        )
    return model


def _planned_runs(plan: dict, model: ScoringModel | None = None) -> list[ScoringRun]:
    """The run's identity per day, as planned (the same in every bucket); a shadow model's
    runs end in ``:<alias>``."""
    suffix = "" if model is None or model.served else f":{model.alias}"
    return [
        ScoringRun(
            scoring_run_id=f"{plan['dagster_run_id']}:{day}{suffix}",
            as_of=date.fromisoformat(day),
            dagster_run_id=plan["dagster_run_id"],
            code_version=plan["code_version"],
            source_versions=plan["source_versions"],
            scored_at=datetime.fromisoformat(plan["scored_at"]),
        )
        for day in plan["days"]
    ]


def _outputs(
    use_case: UseCase,
    lake: Any,
    model: ScoringModel,
    plan: dict,
    runs: list[ScoringRun],
    results: list[BucketScores],
    policy: ScoringPolicy,
    shadow: tuple[ScoringModel, list[BucketScores]] | None = None,
) -> Iterator[Output]:
    """The three assets' materializations, with the last day's plots."""
    tables = use_case.tables.scoring
    last = runs[-1]
    sample = [r for r in results if r.as_of == last.as_of.isoformat() and r.sample_scores]
    names = use_case.encoding.names
    folder = (
        scorehouse_home()
        / "reports"
        / "scoring"
        / use_case.name
        / last.scoring_run_id.replace(":", "_")
    )
    plots = write_run_plots(
        folder,
        np.array([x for r in sample for x in r.sample_scores], dtype=np.float64),
        np.array([x for r in sample for x in r.sample_shap], dtype=np.float64).reshape(
            -1, len(names)
        ),
        np.array([x for r in sample for x in r.sample_inputs], dtype=np.float64).reshape(
            -1, len(names)
        ),
        names,
        policy.thresholds,
    )
    predictions_table, explanations_table = tables.outputs(model.served)
    alias = plan["model_alias"]
    summary = {
        "model_version": model.version,
        "model_alias": alias,
        "lifecycle": "champion (served)" if model.served else f"{alias} (shadow, not served)",
        "written_to": f"{predictions_table}, {explanations_table}",
        "model_sha256": model.sha256,
        "scored_rows": sum(r.rows for r in results),
        "shadow_version": shadow[0].version if shadow else "none",
        "shadow_rows": sum(r.rows for r in shadow[1]) if shadow else 0,
        "entity_buckets": plan["buckets"],
        "scoring_runs": ", ".join(r.scoring_run_id for r in runs),
        "source_versions": MetadataValue.json(plan["source_versions"]),
        "plots_folder": MetadataValue.path(str(folder)),
        "plots": MetadataValue.md(
            "\n\n".join(markdown_image(png, name) for name, png in plots.items())
        ),
    }
    yield Output(
        None, "predictions", metadata={**summary, **table_metadata(lake, predictions_table)}
    )
    yield Output(
        None,
        "explanations",
        metadata={"model_alias": alias, **table_metadata(lake, explanations_table)},
    )
    yield Output(
        None,
        "scoring_runs",
        metadata={"model_alias": alias, **table_metadata(lake, tables.scoring_runs)},
    )


def prediction_online_asset(use_case: UseCase) -> AssetsDefinition:
    """The latest score, band and reasons per entity in the online store (Feast)."""
    view = f"{use_case.name}_prediction"

    @asset(
        key=["feast", f"{use_case.name}_prediction_online"],
        group_name=f"{use_case.name}_scoring",
        partitions_def=source_partitions(use_case.source),
        deps=[prediction_keys(use_case)[0]],
        description=f"Latest {use_case.name} score, band and reasons per entity online (Feast).",
        kinds={"feast"},
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
        store = feature_store.get()
        written = write_online(store, tables, rows)
        return MaterializeResult(
            metadata={
                "feature_view": view,
                "online_store": online_store_name(store),
                "entities_written": written,
                "days": f"{days[0]}..{days[-1]}",
                "scoring_runs": MetadataValue.json(sorted(set(rows["scoring_run_id"].to_list()))),
            }
        )

    return _online


def scoring_assets(use_case: UseCase) -> list[AssetsDefinition]:
    return [predictions_asset(use_case), prediction_online_asset(use_case)]
