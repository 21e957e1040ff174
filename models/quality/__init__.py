"""Data quality gates: Great Expectations suites (reviewed code) and their runner.

Validating a table outside Dagster:

    suite = suites(use_case)[use_case.tables.training_set]()
    batch = build_input(Lakehouse(), suite, run_id=run_id)
    report = validate(suite, batch.frame, batch.parameters)
    report.errors_passed, report.warnings_passed, report.docs_page
"""

from models.quality.inputs import ValidationInput, build_input
from models.quality.runner import ExpectationOutcome, ValidationReport, data_docs_dir, validate
from models.quality.suites import CRITICAL, WARNING, TableSuite, suites

__all__ = [
    "CRITICAL",
    "WARNING",
    "ExpectationOutcome",
    "TableSuite",
    "ValidationInput",
    "ValidationReport",
    "build_input",
    "data_docs_dir",
    "suites",
    "validate",
]
