"""Validation evidence on disk: one self-contained HTML page and one JSON result per validation,
and an index of every validation ever run.

GX's own Data Docs site is rebuilt from its stores on each run; with the ephemeral context the
pipeline uses, each run deleted the pages of earlier runs, and its pages load their styles and
scripts from CDNs, so they are unreadable offline. This module keeps the evidence instead::

    {docs_dir}/index.html                     every validation, newest first
    {docs_dir}/validations.jsonl              the same, one JSON object per line
    {docs_dir}/validations/{table}/{run_id}/{validation_id}/index.html    the page
    {docs_dir}/validations/{table}/{run_id}/{validation_id}/result.json   the full result

Nothing is ever deleted or overwritten (a validation id is a timestamp plus a random suffix),
files appear complete (temporary file, then rename), and the index is updated under a file lock
so that checks running in parallel processes all get listed. Pages carry their CSS inline and
link only to each other by relative paths: no URL outside the folder.
"""

from __future__ import annotations

import fcntl
import html
import json
import os
import re
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

INDEX_PAGE = "index.html"
INDEX_LINES = "validations.jsonl"
NO_RUN = "no-run"
"""The run-id folder of validations made outside a Dagster run."""

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5rem 2rem; color: #1d2433; }
h1 { font-size: 1.4rem; margin: 0 0 .3rem; } h2 { font-size: 1.1rem; margin: 1.6rem 0 .4rem; }
table { border-collapse: collapse; margin: .4rem 0 1rem; }
th, td { border: 1px solid #d5d9e2; padding: .25rem .5rem; text-align: left; vertical-align: top; }
th { background: #f1f3f7; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
code, pre { font: 12px/1.35 ui-monospace, monospace; white-space: pre-wrap; margin: 0; }
.fail { color: #a4161a; font-weight: 600; } .pass { color: #1b7a3a; font-weight: 600; }
.meta td:first-child { font-weight: 600; background: #f8f9fb; }
"""


class Markup(str):
    """Text that is already HTML (escaped values and our own tags); everything else is escaped."""


@dataclass(frozen=True)
class StoredValidation:
    """Where one validation's evidence was written."""

    page: Path
    result: Path
    index: Path


def store(
    docs_dir: Path, summary: Mapping[str, Any], outcomes: Sequence[Mapping[str, Any]], gx: Any
) -> StoredValidation:
    """Write the page and result of one validation and add it to the index.

    ``summary`` holds ``table``, ``run_id`` (or None), ``rows``, ``passed`` (severity → bool)
    and ``parameters``; ``outcomes`` the per-expectation outcomes; ``gx`` GX's own result as a
    JSON-ready dict.
    """
    validated_at = datetime.now(UTC)
    validation_id = f"{validated_at:%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:8]}"
    run_folder = _safe(summary["run_id"] or NO_RUN)
    folder = docs_dir / "validations" / _safe(summary["table"]) / run_folder / validation_id
    folder.mkdir(parents=True, exist_ok=False)
    entry = {
        **summary,
        "validation_id": validation_id,
        "validated_at": validated_at.isoformat(),
        "failed": sum(1 for o in outcomes if not o["success"]),
        "expectations": len(outcomes),
        "page": (folder / INDEX_PAGE).relative_to(docs_dir).as_posix(),
        "result": (folder / "result.json").relative_to(docs_dir).as_posix(),
    }
    result = {**entry, "outcomes": list(outcomes), "gx_result": gx}
    _write(folder / "result.json", json.dumps(result, indent=1, default=str))
    _write(folder / INDEX_PAGE, validation_page(entry, outcomes, depth=4))
    with _locked(docs_dir):
        with (docs_dir / INDEX_LINES).open("a", encoding="utf-8") as lines:
            lines.write(json.dumps(entry, default=str) + "\n")
        _write(docs_dir / INDEX_PAGE, index_page(list(read_index(docs_dir))))
    return StoredValidation(folder / INDEX_PAGE, folder / "result.json", docs_dir / INDEX_PAGE)


def read_index(docs_dir: Path) -> Iterator[dict[str, Any]]:
    """Every stored validation, oldest first."""
    path = docs_dir / INDEX_LINES
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                yield json.loads(line)


def validation_page(
    entry: Mapping[str, Any], outcomes: Sequence[Mapping[str, Any]], *, depth: int
) -> str:
    """The HTML page of one validation (``depth``: folders between it and the index)."""
    status = "passed" if all(entry["passed"].values()) else "failed"
    meta = [
        ("table", entry["table"]),
        ("status", _status(status == "passed")),
        *((f"{severity} expectations", _status(ok)) for severity, ok in entry["passed"].items()),
        ("rows validated", entry["rows"]),
        ("expectations", f"{entry['expectations']} ({entry['failed']} failed)"),
        ("run id", entry["run_id"] or "(outside a run)"),
        ("validated at", entry["validated_at"]),
        ("validation id", entry["validation_id"]),
    ]
    body = [
        f'<p><a href="{"../" * depth}{INDEX_PAGE}">All validations</a> · '
        '<a href="result.json">result.json</a></p>',
        f"<h1>{_e(entry['table'])}: {status}</h1>",
        _meta_table(meta),
        "<h2>Parameters</h2>",
        _meta_table([(k, _json(v)) for k, v in entry.get("parameters", {}).items()])
        if entry.get("parameters")
        else "<p>none</p>",
        "<h2>Expectations</h2>",
        _outcome_table(sorted(outcomes, key=lambda o: (o["success"], o["severity"]))),
        *_samples(outcomes),
    ]
    return _document(f"{entry['table']} validation {entry['validated_at']}", body)


def index_page(entries: Sequence[Mapping[str, Any]]) -> str:
    """The HTML index of every validation, newest first."""
    head = ["validated at", "table", "status", "failed", "rows", "run id", "evidence"]
    rows = [
        [
            e["validated_at"],
            e["table"],
            _status(all(e["passed"].values())),
            _number(f"{e['failed']} / {e['expectations']}"),
            _number(e["rows"]),
            e["run_id"] or "(outside a run)",
            Markup(
                f'<a href="{_e(e["page"])}">page</a> · <a href="{_e(e["result"])}">result.json</a>'
            ),
        ]
        for e in reversed(entries)
    ]
    body = [
        "<h1>Data quality validations</h1>",
        f"<p>{len(entries)} validations, newest first.</p>",
        _table(head, rows),
    ]
    return _document("Data quality validations", body)


def _document(title: str, body: Sequence[str]) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{STYLE}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def _outcome_table(outcomes: Sequence[Mapping[str, Any]]) -> str:
    head = ["", "severity", "expectation", "column", "arguments", "observed", "unexpected", "%"]
    rows = []
    for o in outcomes:
        observed = f"error: {o['error']}" if o.get("error") else o.get("observed")
        percent = o.get("unexpected_percent")
        rows.append(
            [
                _status(o["success"]),
                o["severity"],
                o["expectation"],
                o.get("column") or "",
                _json(o.get("arguments") or {}),
                _json(observed),
                _number(o.get("unexpected_count")),
                _number(None if percent is None else f"{percent:.3g}"),
            ]
        )
    return _table(head, rows)


def _samples(outcomes: Sequence[Mapping[str, Any]]) -> list[str]:
    """A table of sample failing rows per failed expectation that has them."""
    parts = []
    for o in outcomes:
        sample = o.get("sample") or []
        if o["success"] or not sample:
            continue
        columns = list(dict.fromkeys(k for row in sample for k in row))
        title = f"Sample rows failing {o['expectation']} {o.get('column') or ''}"
        parts.append(f"<h2>{_e(title)}</h2>")
        parts.append(_table(columns, [[row.get(c) for c in columns] for row in sample]))
    return parts


def _meta_table(rows: Sequence[tuple[str, Any]]) -> str:
    cells = "".join(f"<tr><td>{_e(k)}</td>{_cell(v)}</tr>" for k, v in rows)
    return f'<table class="meta">{cells}</table>'


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    header = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>"


def _cell(value: Any) -> str:
    """A table cell: ``Markup`` as is (a ``<td …>`` of its own stays whole), anything else
    escaped."""
    text = value if isinstance(value, Markup) else _e(value)
    return text if text.startswith("<td") else f"<td>{text}</td>"


def _number(value: Any) -> Markup:
    return Markup(f'<td class="num">{_e(value)}</td>')


def _status(ok: bool) -> Markup:
    if ok:
        return Markup('<span class="pass">✓ passed</span>')
    return Markup('<span class="fail">✗ failed</span>')


def _json(value: Any) -> Markup:
    if isinstance(value, str):
        return _e(value)
    return Markup(f"<code>{_e(json.dumps(value, default=str, ensure_ascii=False))}</code>")


def _e(value: Any) -> Markup:
    return Markup(html.escape("" if value is None else str(value)))


def _safe(name: str) -> str:
    """A single, portable path component for a table name or run id."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name).strip(".") or "_"


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


@contextmanager
def _locked(docs_dir: Path) -> Iterator[None]:
    """An exclusive lock on the index, across processes."""
    with (docs_dir / ".index.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
