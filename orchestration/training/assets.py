"""Training domain, per use case: ``ml/<uc>_model`` → ``ml/<uc>_model_evaluation``.

* ``ml/<uc>_model`` trains on the latest training-set version, logs the run to MLflow (the
  model in MLflow's xgboost format) and registers a version aliased ``candidate``, tagged with
  what triggered it (the run's ``scorehouse/trigger``, ``scorehouse/as_of`` and
  ``scorehouse/window`` tags: drift, performance, schedule, or manual). It only runs after the
  training set's blocking GX check passed in the same run.
* ``ml/<uc>_model_evaluation`` scores the candidate and the champion on the candidate's test
  rows: plots, a comparison table, and the simulator-truth ROC-AUC on the same rows.

Nothing here promotes: the promotion gate (``orchestration.training.gate``) moves a candidate
into shadow and, on matured evidence, to champion.

No ``from __future__ import annotations``: the generated ``Config`` classes are annotations.
"""

import json

import numpy as np
import polars as pl
import yaml
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    MaterializeResult,
    MetadataValue,
    asset,
)

from lakehouse.storage import Lakehouse
from models.lifecycle.promotion import Comparison, compare
from models.lifecycle.registry import RunContext
from models.markdown import markdown_table
from models.metrics import METRIC_NAMES, truth_comparison
from models.plots import calibration_png, markdown_image, pr_png, roc_png, training_plots
from models.training.train import train
from models.usecase.spec import UseCase
from orchestration.config import config_class, to_dataclass
from orchestration.features.feast_assets import training_set_key
from orchestration.resources import LakehouseResource, LandingResource, ModelRegistryResource
from orchestration.training.truth import read_truth


def model_key(use_case: UseCase) -> AssetKey:
    return AssetKey(["ml", f"{use_case.name}_model"])


def evaluation_key(use_case: UseCase) -> AssetKey:
    return AssetKey(["ml", f"{use_case.name}_model_evaluation"])


def source_versions(lake: Lakehouse, use_case: UseCase, version: int) -> dict[str, int]:
    """Versions of the tables a training-set version was built from.

    Read from that commit's metadata (``scorehouse.source_versions``: an object, or its JSON
    text; or ``scorehouse.source_version.<table>`` keys) when its writer recorded them;
    otherwise the current versions of the label and feature tables.
    """
    table = use_case.tables.training_set
    commit = next((c for c in lake.history(table) if c["version"] == version), {})
    declared: dict[str, int] = {}
    raw = commit.get("scorehouse.source_versions")
    if raw:
        recorded = json.loads(raw) if isinstance(raw, str) else raw
        declared.update({k: int(v) for k, v in recorded.items()})
    prefix = "scorehouse.source_version."
    declared.update(
        {k.removeprefix(prefix): int(v) for k, v in commit.items() if k.startswith(prefix)}
    )
    if declared:
        return declared
    tables = (use_case.tables.labels, *use_case.tables.feature_tables)
    return {name: v for name in tables if (v := lake.version(name)) is not None}


def contract_artifacts(use_case: UseCase) -> dict[str, bytes]:
    """The reason catalogue and the use-case spec, logged next to every model version."""
    reasons = {f: {"code": r.code, "text": r.text} for f, r in use_case.reasons.items()}
    artifacts = {"contract/reasons.json": json.dumps(reasons, indent=2).encode()}
    if use_case.path is not None:
        artifacts["contract/use_case.yaml"] = use_case.path.read_bytes()
    else:
        artifacts["contract/use_case.yaml"] = yaml.safe_dump({"name": use_case.name}).encode()
    return artifacts


def model_asset(use_case: UseCase) -> AssetsDefinition:
    """Train, log and register a challenger of the use case's model."""
    params_type = config_class(f"{use_case.name}_training_config", use_case.params)
    table = use_case.tables.training_set

    @asset(
        key=model_key(use_case),
        deps=[training_set_key(use_case)],
        group_name=f"{use_case.name}_training",
        kinds={"xgboost", "mlflow"},
        description=f"xgboost model trained on {table}; MLflow version 'candidate'.",
    )
    def _model(
        context: AssetExecutionContext,
        config: params_type,  # type: ignore[valid-type]
        lakehouse: LakehouseResource,
        model_registry: ModelRegistryResource,
    ) -> MaterializeResult:
        lake, registry = lakehouse.get(), model_registry.get(use_case)
        registry.ping()  # an unreachable store fails the asset before any training
        version = lake.version(table)
        if version is None:
            raise ValueError(f"{table} was never written: nothing to train on")
        frame = lake.read(table, version=version)
        params = to_dataclass(config, type(use_case.params))
        model = train(frame, use_case.design, params)
        context.log.info(
            f"trained on {model.rows} rows (best iteration {model.best_iteration}); "
            f"test ROC-AUC {model.metrics['test']['roc_auc']:.4f}"
        )
        validation = model.split.rows(frame, "validation")
        plots = training_plots(model, use_case.encoding, validation)
        run = RunContext(
            training_set_version=version,
            feature_service=use_case.features.service,
            source_versions=source_versions(lake, use_case, version),
            dagster_run_id=context.run.run_id,
            use_case=use_case.name,
        )
        example = use_case.encoding.matrix(validation.head(5))
        registered = registry.log_training_run(
            model,
            use_case.encoding,
            run,
            {**plots, **contract_artifacts(use_case)},
            example=pl.DataFrame(example, schema=use_case.encoding.names).to_pandas(),
        )
        trigger = _trigger_tags(context)
        registry.tag_version(registered.version, trigger)
        return MaterializeResult(
            metadata={
                "model_version": registered.version,
                "lifecycle_state": "candidate",
                **trigger,
                "mlflow_run_id": registered.run_id,
                "tracking_uri": registry.uri,
                "training_set_version": version,
                "best_iteration": model.best_iteration,
                **{f"rows_{k}": v for k, v in model.rows.items()},
                **{k: float(v) for k, v in model.flat_metrics().items() if k != "best_iteration"},
                "plots": MetadataValue.md(
                    "\n\n".join(markdown_image(png, name) for name, png in plots.items())
                ),
            }
        )

    return _model


def _trigger_tags(context: AssetExecutionContext) -> dict[str, str]:
    """What launched the run (the retrain sensor's and schedule's run tags; else manual)."""
    tags = context.run.tags
    found = {
        "trigger": tags.get("scorehouse/trigger", "manual"),
        "trigger_as_of": tags.get("scorehouse/as_of", ""),
        "trigger_window": tags.get("scorehouse/window", ""),
        "trigger_reasons": tags.get("scorehouse/reasons", "")[:1000],
    }
    return {k: v for k, v in found.items() if v}


def _comparison_table(comparison: Comparison) -> str:
    challenger, champion = comparison.challenger, comparison.champion
    rows = []
    for name in METRIC_NAMES:
        ours = challenger.metrics[name]
        theirs = champion.metrics[name] if champion else None
        rows.append(
            {
                "metric": name,
                f"candidate v{challenger.version}": f"{ours:.4f}",
                "champion": "—" if theirs is None else f"{theirs:.4f} (v{champion.version})",
                "difference": "—" if theirs is None else f"{ours - theirs:+.4f}",
            }
        )
    return markdown_table(pl.DataFrame(rows))


def _series(comparison: Comparison, label: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    y = comparison.rows[label].to_numpy()
    challenger, champion = comparison.challenger, comparison.champion
    series = {f"candidate v{challenger.version}": (y, challenger.predictions)}
    if champion is not None and champion.version != challenger.version:
        series[f"champion v{champion.version}"] = (y, champion.predictions)
    return series


def evaluation_asset(use_case: UseCase) -> AssetsDefinition:
    """Candidate vs champion on the candidate's test rows, with plots and the truth."""
    label, key = use_case.label.definition.column, use_case.entity.join_key

    @asset(
        key=evaluation_key(use_case),
        deps=[model_key(use_case)],
        group_name=f"{use_case.name}_training",
        kinds={"mlflow"},
        description="Candidate vs champion on the candidate's test rows, with plots.",
    )
    def _evaluation(
        context: AssetExecutionContext,
        lakehouse: LakehouseResource,
        landing: LandingResource,
        model_registry: ModelRegistryResource,
    ) -> MaterializeResult:
        registry = model_registry.get(use_case)
        comparison = compare(registry, lakehouse.get(), use_case)
        challenger = comparison.challenger
        logged = {f"oot_challenger_{k}": v for k, v in challenger.metrics.items()}
        if comparison.champion is not None:
            logged |= {f"oot_champion_{k}": v for k, v in comparison.champion.metrics.items()}
        metadata: dict = {
            "candidate_version": challenger.version,
            "champion_version": comparison.champion.version if comparison.champion else "none",
            "rows": comparison.rows.height,
            "comparison": MetadataValue.md(_comparison_table(comparison)),
            "note": comparison.note or "none",
        }
        evaluation = use_case.evaluation
        truth = None
        if evaluation is not None:
            as_of = comparison.rows["as_of_date"].unique().to_list()
            truth = read_truth(landing.get(), evaluation, key, as_of)
        if truth is None or evaluation is None:
            metadata["truth"] = "no simulator truth in the landing folder"
        else:
            scored = comparison.rows.with_columns(pl.Series("prediction", challenger.predictions))
            quality_bar = truth_comparison(
                scored, truth, key=key, label=label, truth_column=evaluation.column
            )
            logged |= {f"oot_truth_{k}": v for k, v in quality_bar.items()}
            metadata |= {f"truth_{k}": float(v) for k, v in quality_bar.items()}
            context.log.info(f"model vs simulator truth on the same rows: {quality_bar}")
        registry.log_metrics(registry.version(challenger.version).run_id, logged)
        series = _series(comparison, label)
        plots = {"ROC": roc_png(series), "precision-recall": pr_png(series)}
        plots["calibration"] = calibration_png(series)
        metadata["plots"] = MetadataValue.md(
            "\n\n".join(markdown_image(png, name) for name, png in plots.items())
        )
        return MaterializeResult(metadata=metadata)

    return _evaluation


def training_assets(use_case: UseCase) -> list[AssetsDefinition]:
    return [model_asset(use_case), evaluation_asset(use_case)]
