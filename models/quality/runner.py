"""Run a table's GX suite on a polars frame and collect per-expectation results.

GX 1.x runs in an ephemeral context (nothing persisted but the Data Docs): a pandas data source
with one whole-frame batch, the suite, a validation definition and a checkpoint whose
``UpdateDataDocsAction`` renders GX's own Data Docs HTML into
``{SCOREHOUSE_HOME}/gx/data_docs``. The ephemeral stores only hold this validation, so the
site's ``index.html`` lists the latest validation; each validation page stays on disk under
``validations/`` and its path is returned.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa

from lakehouse.config import scorehouse_home
from models.quality.suites import CRITICAL, WARNING, TableSuite

SAMPLE_ROWS = 5
SITE_NAME = "scorehouse"


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
    """Every expectation outcome of one suite run, and the Data Docs page of the run."""

    table: str
    rows: int
    outcomes: list[ExpectationOutcome]
    docs_page: Path | None

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
    """Where GX Data Docs are written: ``{SCOREHOUSE_HOME}/gx/data_docs``."""
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
) -> ValidationReport:
    """Run ``suite`` on ``frame`` with suite ``parameters``; write Data Docs under ``docs_dir``.

    Never raises for failing data: an expectation that errors (e.g. a missing column) is a
    failed outcome carrying the error message.
    """
    import great_expectations as gx
    from great_expectations.checkpoint import UpdateDataDocsAction
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    docs_dir = docs_dir or data_docs_dir()
    docs_dir.mkdir(parents=True, exist_ok=True)
    site = {
        "class_name": "SiteBuilder",
        "store_backend": {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": str(docs_dir),
        },
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    }
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),  # no temporary default site
        data_docs_sites={SITE_NAME: site},
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
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name=suite.table,
            validation_definitions=[definition],
            actions=[UpdateDataDocsAction(name="data_docs", site_names=[SITE_NAME])],
            result_format={"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_ROWS},
        )
    )
    data = to_pandas(frame)
    result = checkpoint.run(
        batch_parameters={"dataframe": data}, expectation_parameters=dict(parameters)
    )
    [(identifier, validation)] = result.run_results.items()
    outcomes = [_outcome(r, data) for r in validation.results]
    page = _docs_page(context, identifier)
    return ValidationReport(suite.table, frame.height, outcomes, page)


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


def _docs_page(context: Any, identifier: Any) -> Path | None:
    urls = context.get_docs_sites_urls(resource_identifier=identifier, site_name=SITE_NAME)
    url = urls[0].get("site_url") if urls else None
    if not url:
        return None
    return Path(unquote(urlparse(url).path))


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
