"""Monitoring assets of each daily partition ``P`` of a use case (group ``<uc>_monitoring``).

* ``monitoring/<uc>_feature_drift``: drift of every feature and of the score of ``P``'s current
  champion predictions vs the training reference, and the pipeline-health checks of ``P``
  (tables ``monitoring.<uc>_feature_drift`` and ``monitoring.<uc>_diagnosis``, partition
  replaced).
* ``monitoring/<uc>_performance``: metrics of the vintages whose labels matured by ``P``,
  merged into ``monitoring.<uc>_performance``.
* ``monitoring/<uc>_report``: verdict (healthy / population drift / pipeline fault), retrain
  recommendation, markdown report with plots; one row appended to ``monitoring.<uc>_verdicts``,
  which the use case's retrain sensor watches; the use case's dashboard (trends over all days,
  ``models.monitoring.dashboard``) rewritten, its path in the metadata.

No ``from __future__ import annotations``: the generated ``Config`` class is an annotation.
"""

from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    MaterializeResult,
    MetadataValue,
    asset,
)

from lakehouse.storage import Lakehouse
from models.markdown import markdown_table
from models.monitoring.dashboard import write_dashboard
from models.monitoring.inputs import scored_runs
from models.monitoring.monitor import (
    Reference,
    build_report,
    drift_and_diagnosis,
    matured_performance,
    training_end,
)
from models.monitoring.performance import latest_matured_vintage
from models.monitoring.policy import MonitoringSettings
from models.monitoring.report import MonitoringReport, write_plots, write_report
from models.plots import markdown_image
from models.scoring.runs import SERVING_ALIAS
from models.usecase.spec import UseCase
from orchestration.config import config_class, to_dataclass
from orchestration.metadata import table_key, table_metadata
from orchestration.partitions import commit_info, partition_days, source_partitions
from orchestration.resources import LakehouseResource, ModelRegistryResource
from orchestration.scoring.assets import prediction_keys

REPORT_VINTAGES = 30  # newest matured vintages shown in a report


def drift_key(use_case: UseCase) -> AssetKey:
    return AssetKey(["monitoring", f"{use_case.name}_feature_drift"])


def performance_key(use_case: UseCase) -> AssetKey:
    return AssetKey(["monitoring", f"{use_case.name}_performance"])


def report_key(use_case: UseCase) -> AssetKey:
    return AssetKey(["monitoring", f"{use_case.name}_report"])


def _stamp(frame: pl.DataFrame, context: AssetExecutionContext) -> pl.DataFrame:
    return frame.with_columns(
        pl.lit(context.run.run_id).alias("dagster_run_id"),
        pl.lit(datetime.now(UTC)).alias("computed_at"),
    )


def _replace_day(
    lake: Lakehouse, table: str, day: date, frame: pl.DataFrame, context: AssetExecutionContext
) -> None:
    rows = _stamp(frame.with_columns(pl.lit(day).alias("as_of_date")), context)
    lake.replace(table, rows, partition={"as_of_date": day}, commit=commit_info(context, [day]))


def monitoring_assets(use_case: UseCase) -> list[AssetsDefinition]:
    """The drift, performance and report assets of a use case."""
    settings_type = config_class(f"{use_case.name}_monitoring_config", use_case.monitoring)
    tables = use_case.tables.monitoring
    common = {
        "group_name": f"{use_case.name}_monitoring",
        "partitions_def": source_partitions(use_case.source),
        "kinds": {"delta"},
    }
    predictions = prediction_keys(use_case)[0]

    @asset(
        key=drift_key(use_case),
        deps=[predictions],
        description="Feature and score drift vs the training reference, and pipeline checks.",
        **common,
    )
    def _drift(
        context: AssetExecutionContext,
        config: settings_type,  # type: ignore[valid-type]
        lakehouse: LakehouseResource,
        model_registry: ModelRegistryResource,
    ) -> MaterializeResult:
        lake, registry = lakehouse.get(), model_registry.get(use_case)
        settings = to_dataclass(config, MonitoringSettings)
        cache: dict[str, Reference] = {}
        for day in partition_days(context):
            result = drift_and_diagnosis(lake, registry, use_case, day, settings, cache)
            _replace_day(lake, tables.feature_drift, day, result.drift, context)
            _replace_day(lake, tables.diagnosis, day, result.diagnosis, context)
            plots = write_plots(use_case.name, day, context.run.run_id, result.plots(settings))
        return MaterializeResult(
            metadata={
                "alerts": result.drift.filter(pl.col("status") == "alert").height,
                "warnings": result.drift.filter(pl.col("status") == "warn").height,
                "faults": result.diagnosis.filter(pl.col("status") == "fault").height,
                "drift": MetadataValue.md(
                    markdown_table(result.drift.head(15), list(result.drift.columns[:7]))
                ),
                "plots": MetadataValue.md(
                    "\n\n".join(markdown_image(p.read_bytes(), n) for n, p in plots.items())
                ),
                **table_metadata(lake, tables.feature_drift),
            }
        )

    @asset(
        key=performance_key(use_case),
        deps=[predictions, table_key(use_case.tables.labels)],
        description="ROC-AUC, PR-AUC, calibration and label coverage of matured vintages.",
        **common,
    )
    def _performance(
        context: AssetExecutionContext,
        config: settings_type,  # type: ignore[valid-type]
        lakehouse: LakehouseResource,
        model_registry: ModelRegistryResource,
    ) -> MaterializeResult:
        lake, registry = lakehouse.get(), model_registry.get(use_case)
        settings = to_dataclass(config, MonitoringSettings)
        days = partition_days(context)
        frames = [matured_performance(lake, registry, use_case, d, settings) for d in days]
        key = ["as_of_date", "model_alias", "model_version"]
        rows = pl.concat(frames).unique(key, keep="last", maintain_order=True).sort(key)
        if rows.height:
            lake.merge(tables.performance, _stamp(rows, context), commit=commit_info(context, days))
        else:
            lake.create_if_missing(tables.performance)
        newest = latest_matured_vintage(days[-1], use_case.label.definition)
        context.log.info(f"{rows.height} vintage rows up to {newest}")
        return MaterializeResult(
            metadata={
                "vintages": rows.height,
                "performance": MetadataValue.md(markdown_table(rows, list(rows.columns))),
                **table_metadata(lake, tables.performance),
            }
        )

    @asset(
        key=report_key(use_case),
        deps=[drift_key(use_case), performance_key(use_case)],
        description="Markdown report: drift, performance by vintage, diagnosis, verdict, action.",
        **common,
    )
    def _report(
        context: AssetExecutionContext,
        config: settings_type,  # type: ignore[valid-type]
        lakehouse: LakehouseResource,
    ) -> MaterializeResult:
        lake = lakehouse.get()
        settings = to_dataclass(config, MonitoringSettings)
        for day in partition_days(context):
            found, path = _report_day(lake, use_case, day, settings, context)
        # The trends over every day so far: one static page, rewritten with each report.
        dashboard = write_dashboard(lake, use_case)
        return MaterializeResult(
            metadata={
                "verdict": found.verdict,
                "retrain_recommended": found.assessment.retrain,
                "dashboard": MetadataValue.path(str(dashboard)),
                "dashboard_url": MetadataValue.url(dashboard.as_uri()),
                "report_path": MetadataValue.path(str(path)),
                "report": MetadataValue.md(path.read_text()),
                "plots": MetadataValue.md(
                    "\n\n".join(
                        markdown_image(png.read_bytes(), png.stem)
                        for png in sorted(path.parent.glob(f"{day}-*.png"))
                    )
                ),
            }
        )

    return [_drift, _performance, _report]


def _report_day(
    lake: Lakehouse,
    use_case: UseCase,
    day: date,
    settings: MonitoringSettings,
    context: AssetExecutionContext,
) -> tuple[MonitoringReport, Path]:
    """Build and write one day's report and append its verdict row."""
    tables = use_case.tables.monitoring
    on_day = pl.col("as_of_date") == day
    drift = lake.read(tables.feature_drift, where=on_day)
    diagnosis = lake.read(tables.diagnosis, where=on_day)
    newest = latest_matured_vintage(day, use_case.label.definition)
    performance_rows = (
        lake.read(tables.performance, where=pl.col("as_of_date") <= newest)
        .sort("as_of_date")
        .tail(REPORT_VINTAGES)
    )
    found = build_report(
        day,
        drift,
        diagnosis,
        performance_rows,
        settings,
        use_case.name,
        trained_until=training_end(use_case, day),
        champion_version=_champion_of(lake, use_case, day),
    )
    path = write_report(use_case.name, found, context.run.run_id, {})
    row = _stamp(verdict_row(found, path), context)
    lake.append(tables.verdicts, row, commit=commit_info(context, [day]))
    return found, path


def _champion_of(lake: Lakehouse, use_case: UseCase, day: date) -> str | None:
    """The model version of the day's current champion scoring run (None: not scored)."""
    runs = scored_runs(lake, use_case, [day]).filter(pl.col("model_alias") == SERVING_ALIAS)
    return str(runs["model_version"][0]) if runs.height else None


def verdict_row(found: MonitoringReport, path: Path) -> pl.DataFrame:
    """The ``monitoring.<uc>_verdicts`` row of a report (without the run stamp).

    The list columns are typed explicitly: on a quiet day no trigger fires, and an empty Python
    list would otherwise become ``List(Null)``, which the table's schema refuses.
    """
    return pl.DataFrame(
        {
            "as_of_date": [found.as_of],
            "verdict": [found.verdict],
            "retrain_recommended": [found.assessment.retrain],
            "reasons": pl.Series([found.assessment.reasons], dtype=pl.List(pl.String())),
            "evidence": pl.Series([found.evidence], dtype=pl.List(pl.String())),
            "report_path": [str(path)],
            "triggers": pl.Series([found.assessment.triggers], dtype=pl.List(pl.String())),
            "deferred": pl.Series([found.assessment.deferred], dtype=pl.List(pl.String())),
        }
    )
