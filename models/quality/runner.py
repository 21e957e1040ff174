"""Run a table's GX suite on a polars frame and collect per-expectation results.

GX 1.x runs in an ephemeral context (nothing persisted by GX): a pandas data source with one
whole-frame batch, the suite and a validation definition. The evidence of every validation is
kept by ``models.quality.pages`` under ``{SCOREHOUSE_HOME}/gx/data_docs``: a self-contained HTML
page and a JSON result (GX's own result included) per validation, in a folder named by table,
run id and validation id, and an index of all validations. Nothing is deleted when the next
validation runs (GX's Data Docs site builder, fed from ephemeral stores, removed the pages of
earlier runs), and no page loads anything from outside the folder.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa

from lakehouse.config import scorehouse_home
from models.quality.pages import store
from models.quality.suites import CRITICAL, WARNING, TableSuite

SAMPLE_ROWS = 5
SEVERITIES = (CRITICAL, WARNING)


@dataclass(frozen=True)
class ExpectationOutcome:
    """Result of one expectation: what it checked, what was observed, which rows failed."""

    expectation: str
    column: str | None
    severity: str
    success: bool
    observed: Any
    unexpected_count: int | None
    unexpected_percent: float | None
    sample: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ValidationReport:
    """Every expectation outcome of one suite run, and where its evidence is kept."""

    table: str
    rows: int
    outcomes: list[ExpectationOutcome]
    docs_page: Path | None
    """The validation's HTML page (kept: no later validation removes it)."""
    results_file: Path | None = None
    """The validation's full JSON result, next to the page."""
    docs_index: Path | None = None
    """The index page listing every validation."""

    def of(self, severity: str) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if o.severity == severity]

    def passed(self, severity: str) -> bool:
        return all(o.success for o in self.of(severity))

    @property
    def errors_passed(self) -> bool:
        return self.passed(CRITICAL)

    @property
    def warnings_passed(self) -> bool:
        return self.passed(WARNING)


def data_docs_dir() -> Path:
    """Where validation pages and results are kept: ``{SCOREHOUSE_HOME}/gx/data_docs``."""
    return scorehouse_home() / "gx" / "data_docs"


def to_pandas(frame: pl.DataFrame) -> pd.DataFrame:
    """The frame as pandas with types GX can tell apart (see ``suites.GX_TYPES``).

    Integers stay nullable (``Int64``), strings are ``string``, dates become ``datetime64``
    and UTC timestamps ``datetime64[us, UTC]``; float nulls become NaN.
    """

    def mapper(dtype: pa.DataType) -> Any:
        if pa.types.is_integer(dtype):
            return pd.Int64Dtype()
        if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
            return pd.StringDtype()
        return None

    table = frame.to_arrow()
    table = table.cast(
        pa.schema(
            pa.field(f.name, pa.large_string()) if pa.types.is_string_view(f.type) else f
            for f in table.schema
        )
    )
    return table.to_pandas(types_mapper=mapper, date_as_object=False)


def validate(
    suite: TableSuite,
    frame: pl.DataFrame,
    parameters: Mapping[str, Any],
    *,
    docs_dir: Path | None = None,
    run_id: str | None = None,
) -> ValidationReport:
    """Run ``suite`` on ``frame`` with suite ``parameters``; keep the page and result of this
    validation under ``docs_dir`` (in a folder of ``run_id``, the Dagster run validating).

    Never raises for failing data: an expectation that errors (e.g. a missing column) is a
    failed outcome carrying the error message.
    """
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),  # no temporary default site
        data_docs_sites={},  # evidence is kept by models.quality.pages, offline and per run
        analytics_enabled=False,  # no usage statistics sent from pipelines
        progress_bars=ProgressBarsConfig(globally=False),
    )
    context = gx.get_context(mode="ephemeral", project_config=config)
    batch = (
        context.data_sources.add_pandas("lakehouse")
        .add_dataframe_asset(suite.table)
        .add_batch_definition_whole_dataframe("table")
    )
    # One add of the whole suite: adding expectations one by one re-serialises it each time.
    gx_suite = context.suites.add(
        gx.ExpectationSuite(name=suite.table, expectations=list(suite.expectations))
    )
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=suite.table, data=batch, suite=gx_suite)
    )
    data = to_pandas(frame)
    validation = definition.run(
        batch_parameters={"dataframe": data},
        expectation_parameters=dict(parameters),
        result_format={"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_ROWS},
    )
    outcomes = [_outcome(r, data) for r in validation.results]
    stored = store(
        docs_dir or data_docs_dir(),
        {
            "table": suite.table,
            "run_id": run_id,
            "rows": frame.height,
            "passed": {s: all(o.success for o in outcomes if o.severity == s) for s in SEVERITIES},
            "parameters": _plain(dict(parameters)),
        },
        [asdict(o) for o in outcomes],
        _plain(validation.to_json_dict()),
    )
    return ValidationReport(
        suite.table, frame.height, outcomes, stored.page, stored.result, stored.index
    )


def _outcome(result: Any, data: pd.DataFrame) -> ExpectationOutcome:
    config = result.expectation_config
    details = result.result or {}
    error = None
    if result.exception_info and result.exception_info.get("raised_exception"):
        error = str(result.exception_info.get("exception_message"))
    indices = details.get("partial_unexpected_index_list") or []
    sample = []
    if indices:
        rows = data.loc[[i for i in indices[:SAMPLE_ROWS] if i in data.index]]
        sample = [{k: _plain(v) for k, v in row.items()} for row in rows.to_dict("records")]
    kwargs = {k: _plain(v) for k, v in config.kwargs.items() if k != "batch_id"}
    return ExpectationOutcome(
        expectation=config.type,
        column=config.kwargs.get("column"),
        severity=_severity(config),
        success=bool(result.success),
        observed=_plain(details.get("observed_value")),
        unexpected_count=details.get("unexpected_count"),
        unexpected_percent=details.get("unexpected_percent"),
        sample=sample,
        error=error,
        arguments=kwargs,
    )


def _severity(config: Any) -> str:
    """GX's ``critical`` / ``warning`` of an expectation (``critical`` when unset)."""
    severity = getattr(config, "severity", None)
    return str(getattr(severity, "value", severity) or CRITICAL)


def _plain(value: Any) -> Any:
    """A JSON-friendly version of a value GX or pandas returned."""
    if value is None or isinstance(value, bool | int | float | str):
        return None if isinstance(value, float) and np.isnan(value) else value
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        return _plain(value.item())
    if isinstance(value, datetime | date | pd.Timestamp):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return str(value)
