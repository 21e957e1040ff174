"""Great Expectations suites as Dagster asset checks on silver tables and training sets.

Each validated table gets one multi-asset check running its suite once and reporting two
checks: ``gx_critical`` (blocking: when a critical expectation fails, assets downstream of the
table in the same run — training — do not run) and ``gx_warning`` (severity WARN, reported
only). Metadata: every expectation's outcome (observed value, unexpected count and percent), the
failures with a sample of bad rows, the table versions compared, and where the evidence is kept:
``data_docs`` (this validation's HTML page), ``validation_results`` (its JSON result) and
``data_docs_index`` (every validation). Each validation keeps its own files under its run id,
so the links of earlier runs keep resolving (``models.quality.pages``).
"""

from collections.abc import Callable, Iterator
from dataclasses import asdict
from datetime import date

import polars as pl
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    MetadataValue,
    multi_asset_check,
)

from models.markdown import markdown_table
from models.quality import CRITICAL, WARNING, TableSuite, build_input, suites, validate
from models.quality.inputs import ValidationInput
from models.quality.runner import ValidationReport
from models.usecase.spec import UseCase
from orchestration.metadata import table_key
from orchestration.resources import LakehouseResource

CHECKS = {CRITICAL: "gx_critical", WARNING: "gx_warning"}
SEVERITY = {CRITICAL: AssetCheckSeverity.ERROR, WARNING: AssetCheckSeverity.WARN}
RESULT_COLUMNS = ("ok", "expectation", "column", "observed", "unexpected", "unexpected_%")


def _partition_end(context: AssetCheckExecutionContext) -> date | None:
    """Last day of the partition range this run builds, if the run is partitioned."""
    run = context.op_execution_context
    if not run.has_partition_key_range:
        return None
    return date.fromisoformat(run.partition_key_range.end)


def _short(value: object, limit: int = 80) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _metadata(report: ValidationReport, batch: ValidationInput, severity: str) -> dict:
    outcomes = report.of(severity)
    failed = [o for o in outcomes if not o.success]
    table = pl.DataFrame(
        [
            {
                "ok": "✅" if o.success else "❌",
                "expectation": o.expectation.removeprefix("expect_"),
                "column": o.column or "",
                "observed": _short(o.observed if o.error is None else f"error: {o.error}"),
                "unexpected": "" if o.unexpected_count is None else str(o.unexpected_count),
                "unexpected_%": ""
                if o.unexpected_percent is None
                else f"{o.unexpected_percent:.3g}",
            }
            for o in sorted(outcomes, key=lambda o: o.success)
        ],
        schema=dict.fromkeys(RESULT_COLUMNS, pl.String),
    )
    metadata = {
        "table_version": batch.table_version,
        "rows": report.rows,
        "expectations": len(outcomes),
        "failed_expectations": len(failed),
        "results": MetadataValue.md(markdown_table(table)),
        "failures": MetadataValue.json([asdict(o) for o in failed]),
        "notes": "; ".join(batch.notes) or "none",
    }
    if batch.previous_version is not None:
        metadata["previous_version"] = batch.previous_version
        metadata["previous_rows"] = batch.previous_rows
    links = {
        "data_docs": report.docs_page,
        "validation_results": report.results_file,
        "data_docs_index": report.docs_index,
    }
    metadata |= {name: MetadataValue.path(str(p)) for name, p in links.items() if p is not None}
    return metadata


def gx_check(table: str, suite_of: Callable[[], TableSuite]) -> AssetChecksDefinition:
    """The blocking + warning GX checks of one table's asset (key = table name split on '.')."""
    key = table_key(table)

    @multi_asset_check(
        name=f"{table.replace('.', '_')}_gx",
        specs=[
            AssetCheckSpec(
                CHECKS[CRITICAL],
                asset=key,
                blocking=True,
                description=f"GX suite of {table}, critical expectations (blocks downstream).",
            ),
            AssetCheckSpec(
                CHECKS[WARNING],
                asset=key,
                description=f"GX suite of {table}, warning expectations (reported only).",
            ),
        ],
        compute_kind="great_expectations",
    )
    def _check(
        context: AssetCheckExecutionContext, lakehouse: LakehouseResource
    ) -> Iterator[AssetCheckResult]:
        suite = suite_of()
        run_id = context.op_execution_context.run_id
        try:
            batch = build_input(
                lakehouse.get(), suite, run_id=run_id, partition_end=_partition_end(context)
            )
        except ValueError as exc:  # the table was never written: nothing can pass
            for severity, name in CHECKS.items():
                yield AssetCheckResult(
                    check_name=name,
                    asset_key=key,
                    passed=False,
                    severity=SEVERITY[severity],
                    metadata={"error": str(exc)},
                )
            return
        report = validate(suite, batch.frame, batch.parameters, run_id=run_id)
        for severity, name in CHECKS.items():
            failed = [o.expectation for o in report.of(severity) if not o.success]
            context.log.info(f"{table} {name}: {len(failed)} failed {failed[:10]}")
            yield AssetCheckResult(
                check_name=name,
                asset_key=key,
                passed=report.passed(severity),
                severity=SEVERITY[severity],
                metadata=_metadata(report, batch, severity),
            )

    return _check


def quality_checks(use_case: UseCase) -> dict[str, AssetChecksDefinition]:
    """The GX checks of a use case's silver tables and training set, by table."""
    return {table: gx_check(table, suite) for table, suite in suites(use_case).items()}
