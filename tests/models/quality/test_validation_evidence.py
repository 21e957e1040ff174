"""Every validation keeps its own page and result under its run id; the index lists them all,
every link resolves, and no page needs the network."""

from __future__ import annotations

import json
import re
from pathlib import Path

import polars as pl

from lakehouse.storage import Lakehouse
from models.quality import build_input, data_docs_dir, suites, validate
from models.quality.pages import INDEX_PAGE, read_index
from models.quality.runner import ValidationReport
from tests.models.synthetic import CHURN

TABLE = CHURN.tables.training_set
HREF = re.compile(r'(?:href|src)="([^"]*)"')


def _validate(lake: Lakehouse, run_id: str | None, frame: pl.DataFrame | None = None):
    suite = suites(CHURN)[TABLE]()
    batch = build_input(lake, suite, run_id=run_id)
    return validate(suite, batch.frame if frame is None else frame, batch.parameters, run_id=run_id)


def _links(page: Path) -> list[Path]:
    return [(page.parent / href).resolve() for href in HREF.findall(page.read_text())]


def _assert_offline(docs: Path) -> None:
    pages = list(docs.rglob("*.html"))
    assert pages
    for page in pages:
        text = page.read_text()
        assert "http" not in text, page  # no CDN, no external link of any kind
        assert "//" not in "".join(HREF.findall(text)), page


def test_each_validation_keeps_its_page_and_every_link_resolves(lake: Lakehouse) -> None:
    first = _validate(lake, "run-one")
    broken = lake.read(TABLE).with_columns(pl.lit(None, dtype=pl.Int64).alias("churned_30d"))
    second = _validate(lake, "run-two", broken)
    outside = _validate(lake, None)
    docs = data_docs_dir()

    reports: list[ValidationReport] = [first, second, outside]
    for report, run in zip(reports, ("run-one", "run-two", "no-run"), strict=True):
        assert report.docs_page is not None and report.docs_page.is_file()
        assert report.docs_page.is_relative_to(docs / "validations" / TABLE / run)
        assert all(link.exists() for link in _links(report.docs_page)), report.docs_page
        assert report.results_file is not None
        result = json.loads(report.results_file.read_text())
        assert result["run_id"] == (None if run == "no-run" else run)
        assert len(result["outcomes"]) == len(report.outcomes)
        assert result["passed"]["critical"] == report.errors_passed
        assert result["gx_result"]["success"] == all(o.success for o in report.outcomes)
    assert first.errors_passed and not second.errors_passed
    assert len({r.docs_page for r in reports}) == 3

    index = docs / INDEX_PAGE
    assert first.docs_index == index
    linked = set(_links(index))
    assert {r.docs_page.resolve() for r in reports if r.docs_page} <= linked
    assert all(link.exists() for link in linked)
    assert [e["run_id"] for e in read_index(docs)] == ["run-one", "run-two", None]
    _assert_offline(docs)


def test_failed_expectations_are_shown_with_their_rows(lake: Lakehouse) -> None:
    frame = lake.read(TABLE)
    bad = frame.with_columns(
        pl.when(pl.int_range(pl.len()) < 3)
        .then(pl.lit("<script>platinum</script>"))
        .otherwise(pl.col("plan"))
        .alias("plan")
    )
    report = _validate(lake, "run-bad", bad)
    assert not report.errors_passed and report.docs_page is not None
    page = report.docs_page.read_text()
    assert "failed" in page and "expect_column_values_to_be_in_set" in page
    assert "&lt;script&gt;platinum&lt;/script&gt;" in page  # data is escaped, never markup
    assert "<script>" not in page
