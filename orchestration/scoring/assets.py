"""Scoring domain: daily batch scores of every active customer by the champion, explained.

``ml/predictions`` resolves the ``champion`` alias once at run start and scores each of the
run's days (see ``models/scoring.py``); it writes ``ml.prediction_explanations``,
``ml.predictions`` and ``ml.scoring_runs``. ``feast/prediction_online`` puts the latest score
and reasons of every customer in the online store for apps.
"""

from datetime import UTC, datetime, time, timedelta

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    BackfillPolicy,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
    multi_asset,
)

from lakehouse.commit import code_version
from lakehouse.config import scorehouse_home
from lakehouse.features import FEATURE_TABLES
from lakehouse.tables import ML_PREDICTION_EXPLANATIONS, ML_PREDICTIONS, ML_SCORING_RUNS
from models.encoding import feature_names
from models.plots import markdown_image
from models.registry import ModelRegistry
from models.scoring import (
    ScoringPolicy,
    ScoringRun,
    load_model,
    pin_feature_versions,
    score_day,
)
from models.scoring_plots import write_run_plots
from orchestration.metadata import table_metadata
from orchestration.partitions import daily_partitions, partition_days
from orchestration.resources import FeatureStoreResource, LakehouseResource

PREDICTION_KEYS = [
    AssetKey(spec.name.split("."))
    for spec in (ML_PREDICTIONS, ML_PREDICTION_EXPLANATIONS, ML_SCORING_RUNS)
]


class ScoringConfig(Config):
    """Risk bands, the outreach threshold, reasons per prediction and chunk size."""

    medium_risk: float = 0.05
    high_risk: float = 0.15
    decision_threshold: float = 0.10
    reasons: int = 3
    chunk_rows: int = 200_000
    model_alias: str = "champion"

    def policy(self) -> ScoringPolicy:
        return ScoringPolicy(
            self.medium_risk, self.high_risk, self.decision_threshold, self.reasons, self.chunk_rows
        )


@multi_asset(
    specs=[
        AssetSpec(
            key=key,
            group_name="scoring",
            deps=[*(AssetKey(n.split(".")) for n in FEATURE_TABLES), AssetKey(["ml", "champion"])],
            description=description,
            kinds={"delta", "xgboost"},
            partitions_def=daily_partitions,
        )
        for key, description in zip(
            PREDICTION_KEYS,
            [
                "ml.predictions: every active customer's churn score, band, decision and top "
                "reason codes, with the model, data versions and run that produced it.",
                "ml.prediction_explanations: the full SHAP vector and base value per prediction.",
                "ml.scoring_runs: one row per completed scoring run (the latest of a day is "
                "current).",
            ],
            strict=True,
        )
    ],
    backfill_policy=BackfillPolicy.single_run(),
    can_subset=False,
)
def predictions(
    context: AssetExecutionContext,
    config: ScoringConfig,
    lakehouse: LakehouseResource,
    feature_store: FeatureStoreResource,
):
    lake = lakehouse.get()
    # Resolved once: a promotion during the run does not mix models within it.
    model = load_model(ModelRegistry(), alias=config.model_alias)
    versions = pin_feature_versions(lake)
    store = feature_store.get(pins=versions)
    policy = config.policy()
    context.log.info(
        f"scoring with {model.name} v{model.version} ({config.model_alias}); {versions}"
    )
    runs = []
    for day in partition_days(context):
        run = ScoringRun(
            scoring_run_id=f"{context.run_id}:{day.isoformat()}",
            as_of=day,
            dagster_run_id=context.run_id,
            code_version=code_version(),
            source_versions=versions,
            scored_at=datetime.now(UTC),
        )
        result = score_day(
            lake,
            store,
            model,
            run,
            policy,
            on_chunk=lambda done, total, day=day: context.log.info(f"{day}: scored {done}/{total}"),
        )
        runs.append(result)
    last = runs[-1]
    folder = scorehouse_home() / "reports" / "scoring" / last.run.scoring_run_id.replace(":", "_")
    plots = write_run_plots(
        folder,
        last.sample_scores,
        last.sample_shap,
        last.sample_inputs,
        feature_names(),
        [policy.medium_risk, policy.decision_threshold, policy.high_risk],
    )
    summary = {
        "model_version": model.version,
        "model_sha256": model.sha256,
        "scored_rows": sum(r.rows for r in runs),
        "scoring_runs": ", ".join(r.run.scoring_run_id for r in runs),
        "source_versions": MetadataValue.json(versions),
        "plots_folder": MetadataValue.path(str(folder)),
        "plots": MetadataValue.md(
            "\n\n".join(markdown_image(png, name) for name, png in plots.items())
        ),
    }
    yield MaterializeResult(
        asset_key=PREDICTION_KEYS[0],
        metadata={**summary, **table_metadata(lake, ML_PREDICTIONS.name)},
    )
    yield MaterializeResult(
        asset_key=PREDICTION_KEYS[1], metadata=table_metadata(lake, ML_PREDICTION_EXPLANATIONS.name)
    )
    yield MaterializeResult(
        asset_key=PREDICTION_KEYS[2], metadata=table_metadata(lake, ML_SCORING_RUNS.name)
    )


@asset(
    key=["feast", "prediction_online"],
    group_name="scoring",
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    deps=[PREDICTION_KEYS[0]],
    description="Latest score, band and reasons per customer in the online store (Feast).",
    kinds={"feast", "sqlite"},
)
def prediction_online(
    context: AssetExecutionContext, feature_store: FeatureStoreResource
) -> MaterializeResult:
    days = partition_days(context)
    start = datetime.combine(days[0], time(0), tzinfo=UTC)
    end = datetime.combine(days[-1] + timedelta(days=1), time(0, 1), tzinfo=UTC)
    feature_store.apply()
    store = feature_store.get()
    store.materialize(start_date=start, end_date=end, feature_views=["customer_prediction"])
    return MaterializeResult(
        metadata={
            "materialized_from": start.isoformat(),
            "materialized_until": end.isoformat(),
        }
    )
