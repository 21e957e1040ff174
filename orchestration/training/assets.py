"""Training domain: ``ml/churn_model`` → ``ml/model_evaluation`` → ``ml/champion``.

* ``ml/churn_model`` trains on the latest ``ml.training_set`` version, logs the run to MLflow
  and registers a version of ``churn`` aliased ``challenger``. It only runs after the training
  set's blocking GX check passed in the same run.
* ``ml/model_evaluation`` scores the challenger and the champion on the challenger's
  out-of-time rows: plots, a comparison table, and the simulator-truth ROC-AUC on the same rows.
* ``ml/champion`` moves the ``champion`` alias if the challenger wins (``models.promotion``).

MLflow location: ``MLFLOW_TRACKING_URI`` or the embedded store (``models.registry``).
"""

import json

import numpy as np
import polars as pl
from dagster import AssetExecutionContext, AssetKey, MaterializeResult, MetadataValue, asset

from lakehouse.features import FEATURE_TABLES
from lakehouse.storage import Lakehouse
from models.metrics import METRIC_NAMES, truth_comparison
from models.plots import calibration_png, markdown_image, pr_png, roc_png, training_plots
from models.promotion import Comparison, compare, promote_challenger
from models.registry import CHAMPION, ModelRegistry, RunContext
from models.training import train
from orchestration.metadata import markdown_table
from orchestration.resources import LakehouseResource, LandingResource
from orchestration.training.config import (
    PromotionConfig,
    TrainingConfig,
    promotion_policy,
    training_params,
)
from orchestration.training.truth import read_truth

TRAINING_SET = "ml.training_set"
TRAINING_SET_KEY = AssetKey(["ml", "training_set"])
CHURN_MODEL_KEY = AssetKey(["ml", "churn_model"])
MODEL_EVALUATION_KEY = AssetKey(["ml", "model_evaluation"])
CHAMPION_KEY = AssetKey(["ml", "champion"])
GROUP = "training"


def source_versions(lake: Lakehouse, version: int) -> dict[str, int]:
    """Versions of the tables a training-set version was built from.

    Read from that commit's metadata (``scorehouse.source_versions``: an object, or its JSON
    text; or ``scorehouse.source_version.<table>`` keys) when its writer recorded them;
    otherwise the current versions of ``labels.churn`` and the ``features.*`` tables.
    """
    commit = next((c for c in lake.history(TRAINING_SET) if c["version"] == version), {})
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
    tables = ("labels.churn", *FEATURE_TABLES)
    return {name: v for name in tables if (v := lake.version(name)) is not None}


@asset(
    key=CHURN_MODEL_KEY,
    deps=[TRAINING_SET_KEY],
    group_name=GROUP,
    kinds={"xgboost", "mlflow"},
    description="xgboost churn classifier trained on ml.training_set; MLflow version 'challenger'.",
)
def churn_model(
    context: AssetExecutionContext, config: TrainingConfig, lakehouse: LakehouseResource
) -> MaterializeResult:
    lake, registry = lakehouse.get(), ModelRegistry()
    registry.ping()  # an unreachable store fails the asset before any training
    version = lake.version(TRAINING_SET)
    if version is None:
        raise ValueError(f"{TRAINING_SET} was never written: nothing to train on")
    frame = lake.read(TRAINING_SET, version=version)
    model = train(frame, training_params(config))
    context.log.info(
        f"trained on {model.rows} rows (best iteration {model.best_iteration}); "
        f"test ROC-AUC {model.metrics['test']['roc_auc']:.4f}"
    )
    artifacts = training_plots(model, model.split.rows(frame, "validation"))
    run = RunContext(version, source_versions(lake, version), context.run_id)
    registered = registry.log_training_run(model, run, artifacts)
    return MaterializeResult(
        metadata={
            "model_version": registered.version,
            "mlflow_run_id": registered.run_id,
            "tracking_uri": registry.uri,
            "training_set_version": version,
            "best_iteration": model.best_iteration,
            **{f"rows_{k}": v for k, v in model.rows.items()},
            **{k: float(v) for k, v in model.flat_metrics().items() if k != "best_iteration"},
            "plots": MetadataValue.md(
                "\n\n".join(markdown_image(png, name) for name, png in artifacts.items())
            ),
        }
    )


def _comparison_table(comparison: Comparison) -> str:
    challenger, champion = comparison.challenger, comparison.champion
    rows = []
    for name in METRIC_NAMES:
        ours = challenger.metrics[name]
        theirs = champion.metrics[name] if champion else None
        rows.append(
            {
                "metric": name,
                f"challenger v{challenger.version}": f"{ours:.4f}",
                "champion": "—" if theirs is None else f"{theirs:.4f} (v{champion.version})",
                "difference": "—" if theirs is None else f"{ours - theirs:+.4f}",
            }
        )
    return markdown_table(pl.DataFrame(rows))


def _series(comparison: Comparison) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    y = comparison.rows["churned_30d"].to_numpy()
    challenger, champion = comparison.challenger, comparison.champion
    series = {f"challenger v{challenger.version}": (y, challenger.predictions)}
    if champion is not None and champion.version != challenger.version:
        series[f"champion v{champion.version}"] = (y, champion.predictions)
    return series


@asset(
    key=MODEL_EVALUATION_KEY,
    deps=[CHURN_MODEL_KEY],
    group_name=GROUP,
    kinds={"mlflow"},
    description="Challenger vs champion on the challenger's out-of-time rows, with plots.",
)
def model_evaluation(
    context: AssetExecutionContext, lakehouse: LakehouseResource, landing: LandingResource
) -> MaterializeResult:
    registry = ModelRegistry()
    comparison = compare(registry, lakehouse.get())
    challenger = comparison.challenger
    logged = {f"oot_challenger_{k}": v for k, v in challenger.metrics.items()}
    if comparison.champion is not None:
        logged |= {f"oot_champion_{k}": v for k, v in comparison.champion.metrics.items()}
    metadata: dict = {
        "challenger_version": challenger.version,
        "champion_version": comparison.champion.version if comparison.champion else "none",
        "rows": comparison.rows.height,
        "comparison": MetadataValue.md(_comparison_table(comparison)),
        "note": comparison.note or "none",
    }
    truth = read_truth(landing.get(), comparison.rows["as_of_date"].unique().to_list())
    if truth is None:
        metadata["truth"] = "no simulator truth in the landing folder"
    else:
        scored = comparison.rows.with_columns(pl.Series("prediction", challenger.predictions))
        quality_bar = truth_comparison(scored, truth)
        logged |= {f"oot_truth_{k}": v for k, v in quality_bar.items()}
        metadata |= {f"truth_{k}": float(v) for k, v in quality_bar.items()}
        context.log.info(f"model vs simulator truth on the same rows: {quality_bar}")
    registry.log_metrics(registry.version(challenger.version).run_id, logged)
    series = _series(comparison)
    plots = {"ROC": roc_png(series), "precision-recall": pr_png(series)}
    plots["calibration"] = calibration_png(series)
    metadata["plots"] = MetadataValue.md(
        "\n\n".join(markdown_image(png, name) for name, png in plots.items())
    )
    return MaterializeResult(metadata=metadata)


@asset(
    key=CHAMPION_KEY,
    deps=[MODEL_EVALUATION_KEY],
    group_name=GROUP,
    kinds={"mlflow"},
    description="Champion/challenger decision: the 'champion' alias moves only if it wins.",
)
def champion(
    context: AssetExecutionContext, config: PromotionConfig, lakehouse: LakehouseResource
) -> MaterializeResult:
    registry = ModelRegistry()
    decision = promote_challenger(
        registry, lakehouse.get(), promotion_policy(config), dagster_run_id=context.run_id
    )
    context.log.info(f"{decision.decision}: {decision.reason}")
    current = registry.alias(CHAMPION)
    return MaterializeResult(
        metadata={
            "decision": decision.decision,
            "reason": decision.reason,
            "challenger_version": decision.challenger_version,
            "previous_champion": decision.champion_version or "none",
            "champion_version": str(current.version) if current else "none",
        }
    )


training_assets = [churn_model, model_evaluation, champion]
