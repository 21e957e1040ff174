"""The monitoring dashboard of a use case: one static HTML file, readable offline.

``reports/monitoring/<use case>/dashboard.html`` under ``SCOREHOUSE_HOME``, rewritten by every
monitoring report run (its path is in the report asset's metadata) and by the demo:

* the latest verdict, its retrain recommendation and what was deferred;
* drift over time (PSI per scored day) of the most important features, with the warn and
  alert levels;
* matured performance by vintage: ROC-AUC of the champion (and of a shadow model) with a 95 %
  band (Hanley–McNeil standard error from the labelled positives and negatives: all a
  vintage's recorded counts allow; it errs on the wide side for binormal scores), the training
  baseline and the decay floor, and the label coverage of each vintage;
* the lifecycle timeline of every version (candidate → shadow → champion / rejected / retired)
  and the evidence of the latest gate decision.

Charts are inline SVG written here and the page has no script, stylesheet or font from
anywhere else: it opens from disk on a machine without network. (Plotly or Altair pages load
their JavaScript from a CDN, or inline a multi-megabyte bundle; matplotlib would do, but SVG
written directly is a few kilobytes per chart and costs nothing to render per run.)
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl

from lakehouse.config import scorehouse_home
from lakehouse.storage import Lakehouse
from models.monitoring.policy import SCORE
from models.usecase.spec import UseCase

WIDTH, HEIGHT, PAD = 640, 220, 44
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf")
TOP_FEATURES = 6


def dashboard_path(use_case: str) -> Path:
    return scorehouse_home() / "reports" / "monitoring" / use_case / "dashboard.html"


def auc_standard_error(auc: float, positives: int, negatives: int) -> float:
    """Hanley & McNeil (1982): the standard error of a ROC-AUC from the class counts."""
    if positives < 1 or negatives < 1 or math.isnan(auc):
        return math.nan
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    variance = (
        auc * (1 - auc) + (positives - 1) * (q1 - auc**2) + (negatives - 1) * (q2 - auc**2)
    ) / (positives * negatives)
    return math.sqrt(max(variance, 0.0))


def _x(day: date, first: date, last: date) -> float:
    span = max((last - first).days, 1)
    return PAD + (WIDTH - 2 * PAD) * (day - first).days / span


def _y(value: float, low: float, high: float) -> float:
    return HEIGHT - PAD + (PAD * 2 - HEIGHT) * (value - low) / max(high - low, 1e-12)


def _axes(first: date, last: date, low: float, high: float) -> str:
    base, end = HEIGHT - PAD, WIDTH - PAD
    return (
        f'<line x1="{PAD}" y1="{base}" x2="{end}" y2="{base}" stroke="#999"/>'
        f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{base}" stroke="#999"/>'
        f'<text x="{PAD}" y="{base + 16}" font-size="10">{first}</text>'
        f'<text x="{end}" y="{base + 16}" font-size="10" text-anchor="end">{last}</text>'
        f'<text x="{PAD - 4}" y="{PAD + 4}" font-size="10" text-anchor="end">{high:.3g}</text>'
        f'<text x="{PAD - 4}" y="{base}" font-size="10" text-anchor="end">{low:.3g}</text>'
    )


def line_chart(
    series: dict[str, list[tuple[date, float]]],
    *,
    title: str,
    bands: dict[str, list[tuple[date, float, float]]] | None = None,
    levels: Sequence[tuple[str, float]] = (),
    markers: Sequence[tuple[str, date]] = (),
) -> str:
    """An SVG line chart: one polyline per series, shaded bands, horizontal levels and
    vertical day markers, axes with the first/last day and the value range."""
    points = [(d, v) for values in series.values() for d, v in values if not math.isnan(v)]
    band_points = [
        (d, v) for rows in (bands or {}).values() for d, lo, hi in rows for v in (lo, hi)
        if not math.isnan(v)
    ]  # fmt: skip
    if not points:
        return f"<p><em>{html.escape(title)}: no data yet</em></p>"
    days = [d for d, _ in points] + [d for _, d in markers]
    first, last = min(days), max(days)
    values = [v for _, v in points + band_points] + [v for _, v in levels]
    low, high = min(values), max(values)
    margin = (high - low) * 0.08 or 0.05
    low, high = low - margin, high + margin
    parts = [
        f'<svg width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img"><title>{html.escape(title)}</title>',
        f'<text x="{PAD}" y="16" font-size="13" font-weight="bold">{html.escape(title)}</text>',
        _axes(first, last, low, high),
    ]
    for i, (name, rows) in enumerate((bands or {}).items()):
        rows = [r for r in rows if not (math.isnan(r[1]) or math.isnan(r[2]))]
        if len(rows) < 1:
            continue
        upper = [f"{_x(d, first, last):.1f},{_y(hi, low, high):.1f}" for d, _, hi in rows]
        lower = [f"{_x(d, first, last):.1f},{_y(lo, low, high):.1f}" for d, lo, _ in reversed(rows)]
        colour = COLOURS[list(series).index(name) % len(COLOURS)] if name in series else COLOURS[i]
        parts.append(
            f'<polygon points="{" ".join(upper + lower)}" fill="{colour}" opacity="0.15"/>'
        )
    for name, value in levels:
        y = _y(value, low, high)
        parts.append(
            f'<line x1="{PAD}" y1="{y:.1f}" x2="{WIDTH - PAD}" y2="{y:.1f}" stroke="#666" '
            f'stroke-dasharray="4 3"/><text x="{WIDTH - PAD + 2}" y="{y + 3:.1f}" '
            f'font-size="9">{html.escape(name)}</text>'
        )
    for name, day in markers:
        x = _x(day, first, last)
        parts.append(
            f'<line x1="{x:.1f}" y1="{PAD}" x2="{x:.1f}" y2="{HEIGHT - PAD}" stroke="#bbb"/>'
            f'<text x="{x + 2:.1f}" y="{PAD - 4}" font-size="9">{html.escape(name)}</text>'
        )
    for i, (name, line) in enumerate(series.items()):
        kept = [(d, v) for d, v in line if not math.isnan(v)]
        colour = COLOURS[i % len(COLOURS)]
        coords = " ".join(f"{_x(d, first, last):.1f},{_y(v, low, high):.1f}" for d, v in kept)
        parts.append(
            f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="1.6"/>'
        )
        parts += [
            f'<circle cx="{_x(d, first, last):.1f}" cy="{_y(v, low, high):.1f}" r="2" '
            f'fill="{colour}"/>'
            for d, v in kept
        ]
        parts.append(
            f'<text x="{WIDTH - PAD - 4}" y="{PAD + 12 * (i + 1)}" font-size="10" '
            f'text-anchor="end" fill="{colour}">{html.escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _table(frame: pl.DataFrame) -> str:
    if frame.is_empty():
        return "<p><em>none</em></p>"
    head = "".join(f"<th>{html.escape(c)}</th>" for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row) + "</tr>"
        for row in frame.iter_rows()
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(value: object) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4g}"
    return "" if value is None else str(value)


def drift_section(lake: Lakehouse, use_case: UseCase) -> str:
    table = use_case.tables.monitoring.feature_drift
    if not lake.exists(table):
        return "<p><em>no drift rows yet</em></p>"
    drift = lake.read(table, columns=["as_of_date", "feature", "psi", "importance"])
    features = drift.filter(pl.col("feature") != SCORE)
    newest = features["as_of_date"].max()
    top = (
        features.filter(pl.col("as_of_date") == newest)
        .sort(pl.col("importance").fill_nan(None), descending=True, nulls_last=True)
        .head(TOP_FEATURES)["feature"]
        .to_list()
    )
    thresholds = use_case.monitoring.drift
    charts = []
    for name in [*top, SCORE]:
        rows = drift.filter(pl.col("feature") == name).sort("as_of_date")
        series = {
            "PSI": list(
                zip(rows["as_of_date"], rows["psi"].fill_nan(None).fill_null(math.nan), strict=True)
            )
        }
        charts.append(
            line_chart(
                series,
                title=f"{'score' if name == SCORE else name}: PSI vs training reference",
                levels=[("warn", thresholds.psi_warn), ("alert", thresholds.psi_alert)],
            )
        )
    return "".join(f'<div class="chart">{c}</div>' for c in charts)


def performance_section(lake: Lakehouse, use_case: UseCase) -> str:
    table = use_case.tables.monitoring.performance
    if not lake.exists(table):
        return "<p><em>no matured vintages yet</em></p>"
    rows = lake.read(table).sort("as_of_date", "model_alias", "model_version")
    if rows.is_empty():
        return "<p><em>no matured vintages yet</em></p>"
    series: dict[str, list[tuple[date, float]]] = {}
    bands: dict[str, list[tuple[date, float, float]]] = {}
    for (alias, version), group in rows.group_by(
        "model_alias", "model_version", maintain_order=True
    ):
        name = f"{alias} v{version}"
        series[name], bands[name] = [], []
        for r in group.sort("as_of_date").iter_rows(named=True):
            auc = r["roc_auc"] if r["roc_auc"] is not None else math.nan
            se = auc_standard_error(auc, r["positives"], r["labelled"] - r["positives"])
            series[name].append((r["as_of_date"], auc))
            bands[name].append((r["as_of_date"], auc - 1.96 * se, auc + 1.96 * se))
    champion = rows.filter(pl.col("model_alias") == "champion")
    levels = []
    if champion.height and champion["training_roc_auc"][-1] is not None:
        baseline = float(champion["training_roc_auc"][-1])
        levels = [
            ("training", baseline),
            ("decay floor", baseline - use_case.monitoring.policy.roc_auc_margin),
        ]
    auc = line_chart(
        series, bands=bands, levels=levels, title="Matured ROC-AUC by vintage (95 % band)"
    )
    coverage = line_chart(
        {
            "label coverage": list(
                zip(champion["as_of_date"], champion["label_coverage"], strict=True)
            ),
        },
        title="Label coverage of the champion's vintages",
        levels=[("minimum", use_case.monitoring.policy.min_label_coverage)],
    )
    shown = rows.select(
        "as_of_date", "model_alias", "model_version", "predictions", "labelled",
        "label_coverage", "positives", "roc_auc", "pr_auc", "ece", "training_roc_auc",
    ).tail(40)  # fmt: skip
    return f'<div class="chart">{auc}</div><div class="chart">{coverage}</div>' + _table(shown)


def lifecycle_section(lake: Lakehouse, use_case: UseCase) -> str:
    table = use_case.tables.decisions
    if not lake.exists(table):
        return "<p><em>no decisions yet</em></p>"
    decisions = lake.read(table).sort("decided_at")
    moves = decisions.filter(pl.col("as_of_date").is_not_null())
    bars = _timeline(moves)
    listing = decisions.select(
        "as_of_date", "challenger_version", "from_state", "to_state", "decision", "trigger",
        "reason",
    ).rename({"challenger_version": "version"})  # fmt: skip
    evidence = ""
    judged = decisions.filter(
        pl.col("decision").is_in(["promote", "reject"]) & (pl.col("from_state") == "shadow")
    )
    if judged.height:
        last = judged.row(-1, named=True)
        facts = json.loads(last["evidence"] or "{}")
        rows = [
            {
                "metric": k,
                "champion": _cell(facts.get("champion", {}).get(k)),
                "shadow": _cell(facts.get("shadow", {}).get(k)),
                "difference [interval]": _interval(facts.get("difference", {}).get(k)),
            }
            for k in ("roc_auc", "pr_auc", "ece", "calibration_in_the_large", "business_value")
        ]
        evidence = (
            f"<h3>Latest gate decision: v{last['challenger_version']} {last['decision']} on "
            f"{last['as_of_date']}</h3><p>{html.escape(last['reason'])}</p>"
            + _table(
                pl.DataFrame(rows, schema=dict.fromkeys(rows[0], pl.String)).with_columns(
                    pl.all().cast(pl.String)
                )
            )
        )
    return bars + _table(listing) + evidence


def _interval(found: dict | None) -> str:
    if not found:
        return ""
    return f"{found['estimate']:+.4f} [{found['low']:+.4f}, {found['high']:+.4f}]"


def _timeline(moves: pl.DataFrame) -> str:
    """One row per version: a bar from its first recorded move to its last, coloured by state."""
    if moves.is_empty():
        return ""
    colour = {
        "shadow": "#ff7f0e",
        "champion": "#2ca02c",
        "rejected": "#d62728",
        "retired": "#7f7f7f",
    }
    first, last = moves["as_of_date"].min(), moves["as_of_date"].max()
    assert isinstance(first, date) and isinstance(last, date)
    versions = sorted(set(moves["challenger_version"]), key=int)
    height = 30 + 22 * len(versions)
    parts = [
        f'<svg width="{WIDTH}" height="{height}" role="img">'
        "<title>Lifecycle timeline</title>"
        f'<text x="{PAD}" y="14" font-size="13" font-weight="bold">Lifecycle timeline</text>'
    ]
    for i, version in enumerate(versions):
        y = 26 + 22 * i
        rows = moves.filter(pl.col("challenger_version") == version).sort("decided_at")
        parts.append(f'<text x="4" y="{y + 12}" font-size="11">v{version}</text>')
        spans = rows.select("as_of_date", "to_state").rows()
        for (start, state), end in zip(spans, [*[s for s, _ in spans[1:]], last], strict=True):
            x0, x1 = _x(start, first, last), max(_x(end, first, last), _x(start, first, last) + 4)
            parts.append(
                f'<rect x="{x0:.1f}" y="{y}" width="{x1 - x0:.1f}" height="14" '
                f'fill="{colour.get(state, "#1f77b4")}">'
                f"<title>v{version} {state} from {start}</title></rect>"
            )
    legend = " ".join(f'<tspan fill="{c}">■ {s}</tspan>' for s, c in colour.items())
    parts.append(f'<text x="{PAD + 160}" y="14" font-size="10">{legend}</text></svg>')
    return f'<div class="chart">{"".join(parts)}</div>'


def verdict_section(lake: Lakehouse, use_case: UseCase) -> str:
    table = use_case.tables.monitoring.verdicts
    if not lake.exists(table):
        return "<p><em>no monitoring run yet</em></p>"
    verdicts = lake.read(table).sort("as_of_date", "computed_at")
    row = verdicts.row(-1, named=True)
    items = "".join(f"<li>{html.escape(r)}</li>" for r in row["reasons"] or [])
    deferred = "".join(f"<li>{html.escape(r)}</li>" for r in row.get("deferred") or [])
    return (
        f"<p>Day {row['as_of_date']}: <strong>{html.escape(row['verdict'])}</strong>, retrain "
        f"{'recommended' if row['retrain_recommended'] else 'not needed'}. Report: "
        f"<code>{html.escape(row['report_path'])}</code></p>"
        + (f"<ul>{items}</ul>" if items else "")
        + (f"<p>Deferred:</p><ul>{deferred}</ul>" if deferred else "")
    )


STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; max-width: 1400px; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: 4px; margin-top: 32px; }
.chart { display: inline-block; margin: 6px; vertical-align: top; }
table { border-collapse: collapse; font-size: 12px; margin: 8px 0; }
td, th { border: 1px solid #ddd; padding: 3px 6px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
code { font-size: 11px; }
"""


def render(lake: Lakehouse, use_case: UseCase) -> str:
    """The dashboard page (see the module docstring)."""
    sections = [
        ("Latest verdict", verdict_section(lake, use_case)),
        ("Matured performance by vintage", performance_section(lake, use_case)),
        ("Drift over time (most important features, and the score)", drift_section(lake, use_case)),
        ("Model lifecycle", lifecycle_section(lake, use_case)),
    ]
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = "".join(f"<h2>{html.escape(t)}</h2>{content}" for t, content in sections)
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(use_case.name)} monitoring</title><style>{STYLE}</style></head>"
        f"<body><h1>{html.escape(use_case.name)}: monitoring dashboard</h1>"
        f"<p>{html.escape(use_case.description)} Generated {stamp}.</p>{body}</body></html>"
    )


def write_dashboard(lake: Lakehouse, use_case: UseCase) -> Path:
    """Write the dashboard (atomically: a reader never sees half a page); its path."""
    path = dashboard_path(use_case.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(render(lake, use_case), encoding="utf-8")
    temporary.replace(path)
    return path
