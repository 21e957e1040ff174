"""Regulatory evidence assets of a use case (only those its spec asks for).

* ``monitoring/<uc>_explanation_agreement`` (spec ``explanations``): for the current champion
  run of each partition day, LIME on a seeded sample beside the run's recorded SHAP; rows
  appended to ``monitoring.<uc>_lime_explanations`` then ``…_explanation_agreement`` (the
  latter is the commit point); check ``lime_shap_agreement`` warns below the spec's minimum.
* ``monitoring/<uc>_fairness`` (spec ``fairness``): outcomes per protected group of the same
  runs, appended to ``monitoring.<uc>_fairness``; check ``adverse_impact_ratio`` warns when a
  group falls below the four-fifths (or the spec's) ratio.
* ``ml/<uc>_model_card`` (every use case): after the promotion decision, the documentation
  pack of the newest version, logged to its MLflow run and linked from the version's tags.

Plots go to ``{SCOREHOUSE_HOME}/reports/evidence/<uc>/<scoring run>/`` and into the metadata.

No ``from __future__ import annotations``: Dagster reads the ``context`` annotation at runtime.
"""

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    MaterializeResult,
    MetadataValue,
    asset,
)

from lakehouse.config import scorehouse_home
from lakehouse.storage import Lakehouse
from models.card.publish import write_card
from models.evidence.plots import agreement_png, fairness_png
from models.evidence.record import (
    EvidenceError,
    explanation_agreement,
    fairness_evidence,
    stamp,
)
from models.markdown import markdown_table
from models.monitoring.inputs import scored_runs
from models.plots import markdown_image
from models.scoring.runs import SERVING_ALIAS
from models.usecase.spec import UseCase
from orchestration.metadata import table_metadata
from orchestration.partitions import commit_info, partition_days, source_partitions
from orchestration.resources import LakehouseResource, ModelRegistryResource
from orchestration.scoring.assets import prediction_keys
from orchestration.training.assets import evaluation_key

AGREEMENT_CHECK = "lime_shap_agreement"
FAIRNESS_CHECK = "adverse_impact_ratio"


def agreement_key(use_case: UseCase) -> AssetKey:
    return AssetKey(["monitoring", f"{use_case.name}_explanation_agreement"])


def fairness_key(use_case: UseCase) -> AssetKey:
    return AssetKey(["monitoring", f"{use_case.name}_fairness"])


def model_card_key(use_case: UseCase) -> AssetKey:
    return AssetKey(["ml", f"{use_case.name}_model_card"])


def champion_run(lake: Lakehouse, use_case: UseCase, day: date) -> dict:
    """The current (latest recorded) champion scoring run of ``day``."""
    runs = scored_runs(lake, use_case, [day]).filter(pl.col("model_alias") == SERVING_ALIAS)
    if runs.is_empty():
        raise EvidenceError(
            f"{use_case.tables.scoring.scoring_runs} records no champion run for {day}: score "
            "that day first"
        )
    return runs.row(0, named=True)


def _folder(use_case: UseCase, scoring_run_id: str) -> Path:
    folder = (
        scorehouse_home()
        / "reports"
        / "evidence"
        / use_case.name
        / scoring_run_id.replace(":", "_")
    )
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _common(use_case: UseCase) -> dict:
    return {
        "group_name": f"{use_case.name}_monitoring",
        "partitions_def": source_partitions(use_case.source),
        "deps": [prediction_keys(use_case)[0]],
        "kinds": {"delta"},
    }


def agreement_asset(use_case: UseCase) -> AssetsDefinition:
    """LIME beside the recorded SHAP for each day's champion run."""
    key, tables = agreement_key(use_case), use_case.tables.evidence
    spec = use_case.explanations
    assert spec is not None

    @asset(
        key=key,
        description=f"LIME on {spec.sample_size} rows of each scoring run vs its recorded SHAP "
        f"(Spearman of the top {spec.top_k} features, sign agreement).",
        check_specs=[AssetCheckSpec(AGREEMENT_CHECK, asset=key)],
        **_common(use_case),
    )
    def _agreement(
        context: AssetExecutionContext,
        lakehouse: LakehouseResource,
        model_registry: ModelRegistryResource,
    ) -> Iterator[MaterializeResult]:
        lake, registry = lakehouse.get(), model_registry.get(use_case)
        days = partition_days(context)
        summaries, plots = [], {}
        for day in days:
            run = champion_run(lake, use_case, day)
            found = explanation_agreement(lake, registry, use_case, run)
            commit = commit_info(context, [day])
            # The LIME rows first, the summary last: the summary row is the commit point.
            lake.append(tables.lime, stamp(found.rows, context.run_id), commit=commit)
            lake.append(tables.agreement, stamp(found.summary, context.run_id), commit=commit)
            summaries.append(found.summary)
            png = agreement_png(
                found.per_row.spearman, found.shap, found.lime, use_case.encoding.names
            )
            path = _folder(use_case, run["scoring_run_id"]) / "lime_shap_agreement.png"
            path.write_bytes(png)
            plots = {"LIME vs SHAP": png}
            context.log.info(f"{day}: {found.summary.select('mean_spearman').item():.3f}")
        summary = pl.concat(summaries)
        alerts = summary.filter(pl.col("alert"))
        columns = ["as_of_date", "explained", "mean_spearman", "sign_agreement", "top1_agreement"]
        yield MaterializeResult(
            metadata={
                "agreement": MetadataValue.md(markdown_table(summary, [*columns, "alert"])),
                "plots_folder": MetadataValue.path(str(path.parent)),
                "plots": MetadataValue.md(
                    "\n\n".join(markdown_image(p, n) for n, p in plots.items())
                ),
                **table_metadata(lake, tables.agreement),
            },
            check_results=[
                AssetCheckResult(
                    check_name=AGREEMENT_CHECK,
                    passed=alerts.is_empty(),
                    severity=AssetCheckSeverity.WARN,
                    description=(
                        f"mean Spearman >= {spec.min_rank_correlation:g} on every run"
                        if alerts.is_empty()
                        else f"{alerts.height} runs below {spec.min_rank_correlation:g}"
                    ),
                    metadata={"mean_spearman": float(summary["mean_spearman"].min())},
                )
            ],
        )

    return _agreement


def fairness_asset(use_case: UseCase) -> AssetsDefinition:
    """Outcomes per protected group of each day's champion run."""
    key, tables = fairness_key(use_case), use_case.tables.evidence
    spec = use_case.fairness
    assert spec is not None

    @asset(
        key=key,
        description="Approval rate, mean PD, observed default rate and adverse impact ratio per "
        f"protected group ({', '.join(use_case.protected_attributes)}) of each scoring run.",
        check_specs=[AssetCheckSpec(FAIRNESS_CHECK, asset=key)],
        **_common(use_case),
    )
    def _fairness(
        context: AssetExecutionContext, lakehouse: LakehouseResource
    ) -> Iterator[MaterializeResult]:
        lake = lakehouse.get()
        frames = []
        for day in partition_days(context):
            run = champion_run(lake, use_case, day)
            rows = fairness_evidence(lake, use_case, run)
            lake.append(
                tables.fairness, stamp(rows, context.run_id), commit=commit_info(context, [day])
            )
            png = fairness_png(rows)
            path = _folder(use_case, run["scoring_run_id"]) / "fairness.png"
            path.write_bytes(png)
            frames.append(rows)
        every = pl.concat(frames)
        alerts = every.filter(pl.col("alert"))
        columns = [
            "as_of_date",
            "attribute",
            "group",
            "rows",
            "approval_rate",
            "adverse_impact_ratio",
            "mean_pd",
            "observed_default_rate",
            "alert",
        ]
        yield MaterializeResult(
            metadata={
                "groups": MetadataValue.md(markdown_table(rows, columns)),
                "alerts": alerts.height,
                "plots_folder": MetadataValue.path(str(path.parent)),
                "plots": MetadataValue.md(markdown_image(png, "approval rate by group")),
                **table_metadata(lake, tables.fairness),
            },
            check_results=[
                AssetCheckResult(
                    check_name=FAIRNESS_CHECK,
                    passed=alerts.is_empty(),
                    severity=AssetCheckSeverity.WARN,
                    description=(
                        f"every group's adverse impact ratio >= {spec.min_adverse_impact_ratio:g}"
                        if alerts.is_empty()
                        else "below the ratio: "
                        + ", ".join(
                            f"{r['attribute']}={r['group']} ({r['as_of_date']})"
                            for r in alerts.iter_rows(named=True)
                        )
                    ),
                    metadata={"alerts": alerts.height},
                )
            ],
        )

    return _fairness


def model_card_asset(use_case: UseCase) -> AssetsDefinition:
    """The documentation pack of the newest version (a candidate), after its evaluation."""

    @asset(
        key=model_card_key(use_case),
        deps=[evaluation_key(use_case)],
        group_name=f"{use_case.name}_training",
        kinds={"mlflow", "html"},
        description="Model card (HTML + Markdown) of the newest version, logged to its MLflow "
        "run; the version's tag model_card points at it.",
    )
    def _card(
        context: AssetExecutionContext,
        lakehouse: LakehouseResource,
        model_registry: ModelRegistryResource,
    ) -> MaterializeResult:
        registry = model_registry.get(use_case)
        versions = registry.versions()
        if not versions:
            raise EvidenceError(f"model {use_case.model_name} has no registered version")
        version = str(versions[0].version)
        files = write_card(registry, lakehouse.get(), use_case, version)
        context.log.info(f"model card of v{version}: {files.html}")
        return MaterializeResult(
            metadata={
                "model_version": version,
                "model_card": MetadataValue.path(str(files.html)),
                "model_card_markdown": MetadataValue.path(str(files.markdown)),
                "mlflow_artifact": files.artifact_uri or "not logged",
            }
        )

    return _card


def evidence_assets(use_case: UseCase) -> list[AssetsDefinition]:
    """The daily evidence assets the spec asks for (none for a spec without them)."""
    assets = []
    if use_case.explanations is not None:
        assets.append(agreement_asset(use_case))
    if use_case.fairness is not None:
        assets.append(fairness_asset(use_case))
    return assets
