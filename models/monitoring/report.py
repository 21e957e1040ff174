"""The markdown report of one monitoring run and its plots.

Written to ``{SCOREHOUSE_HOME}/reports/monitoring/<use case>/<as_of>.md`` with
``<as_of>-psi.png`` (PSI per feature) and ``<as_of>-score.png`` (score distribution, reference
vs current) beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from lakehouse.config import scorehouse_home
from models.markdown import markdown_table
from models.monitoring.policy import SCORE, Assessment, DriftThresholds
from models.plots import _figure, _png

DRIFT_COLUMNS = [
    "feature",
    "kind",
    "status",
    "psi",
    "ks_statistic",
    "ks_pvalue",
    "chi2_pvalue",
    "importance",
    "current_null_rate",
]
PERFORMANCE_COLUMNS = [
    "as_of_date",
    "model_alias",
    "model_version",
    "labelled",
    "label_coverage",
    "roc_auc",
    "pr_auc",
    "ece",
    "training_roc_auc",
]
DIAGNOSIS_COLUMNS = ["check", "subject", "status", "detail"]


def report_folder(use_case: str, as_of: date, run_id: str) -> Path:
    """``reports/monitoring/<use case>/<as_of>/<run id>/``: one folder per run, so a re-run of a
    day never rewrites the report an earlier verdict row links to."""
    if not run_id or "/" in run_id or run_id.startswith("."):
        raise ValueError(f"run id {run_id!r} cannot name a report folder")
    folder = scorehouse_home() / "reports" / "monitoring" / use_case / str(as_of) / run_id
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def psi_png(drift: pl.DataFrame, thresholds: DriftThresholds) -> bytes:
    """Horizontal bars of PSI per feature (and the score), threshold lines at warn and alert."""
    rows = drift.filter(pl.col("psi").is_not_nan()).sort("psi")
    figure, ax = _figure((6.5, 0.22 * rows.height + 1.4))
    colours = {"alert": "tab:red", "warn": "tab:orange", "ok": "tab:blue"}
    ax.barh(
        rows["feature"].to_list(),
        rows["psi"].to_list(),
        color=[colours.get(s, "grey") for s in rows["status"]],
    )
    for level, style in ((thresholds.psi_warn, ":"), (thresholds.psi_alert, "--")):
        ax.axvline(level, color="grey", linestyle=style)
    ax.set(xlabel="PSI vs training reference", title="Feature drift (PSI)")
    ax.tick_params(axis="y", labelsize=7)
    return _png(figure)


def score_png(reference: np.ndarray, current: np.ndarray) -> bytes:
    """Density histograms of the reference and current scores on shared bins."""
    figure, ax = _figure()
    both = np.concatenate([reference, current])
    bins = np.linspace(0.0, float(both.max()) if both.size else 1.0, 31).tolist()
    for name, values in (("reference", reference), ("current", current)):
        ax.hist(values, bins=bins, density=True, alpha=0.5, label=f"{name} (n={values.size})")
    ax.set(xlabel="score", ylabel="density", title="Score distribution")
    ax.legend(loc="upper right")
    return _png(figure)


def _bullets(items: list[str]) -> str:
    return "\n".join(f"- {item}" for item in items) or "- (none)"


@dataclass(frozen=True)
class MonitoringReport:
    """Everything one monitoring run found about one as-of date."""

    as_of: date
    model_version: str
    training_set_version: int
    drift: pl.DataFrame
    diagnosis: pl.DataFrame
    performance: pl.DataFrame
    verdict: str
    evidence: list[str]
    assessment: Assessment
    action: str

    def markdown(self, images: dict[str, str]) -> str:
        """The report; ``images`` maps alt text to a file name next to the report."""
        features = self.drift.filter(pl.col("feature") != SCORE)
        score = self.drift.filter(pl.col("feature") == SCORE)
        sections = [
            f"# Monitoring report {self.as_of}",
            f"Champion v{self.model_version}, reference training set v{self.training_set_version}.",
            f"## Verdict: **{self.verdict}**\n\n{_bullets(self.evidence)}",
            f"## Action\n\n{self.action}\n\nRetrain recommended: "
            f"**{'yes' if self.assessment.retrain else 'no'}**\n\n"
            f"{_bullets(self.assessment.reasons)}"
            + (
                "\n\nTriggers suppressed by the pipeline fault:\n\n"
                + _bullets(self.assessment.suppressed)
                if self.assessment.suppressed
                else ""
            )
            + (
                "\n\nTriggers deferred:\n\n" + _bullets(self.assessment.deferred)
                if self.assessment.deferred
                else ""
            ),
            f"## Feature drift (most severe first)\n\n{markdown_table(features, DRIFT_COLUMNS)}",
            f"## Score drift\n\n{markdown_table(score, DRIFT_COLUMNS)}",
            "## Performance by vintage (matured labels)\n\n"
            + markdown_table(self.performance, PERFORMANCE_COLUMNS),
            f"## Pipeline diagnosis\n\n{markdown_table(self.diagnosis, DIAGNOSIS_COLUMNS)}",
            "## Plots\n\n" + "\n\n".join(f"![{alt}]({name})" for alt, name in images.items()),
        ]
        return "\n\n".join(sections) + "\n"


def write_plots(
    use_case: str, as_of: date, run_id: str, plots: dict[str, bytes]
) -> dict[str, Path]:
    """Write PNGs (name → bytes) as ``<name>.png`` in the run's report folder."""
    folder = report_folder(use_case, as_of, run_id)
    paths = {name: folder / f"{name}.png" for name in plots}
    for name, png in plots.items():
        paths[name].write_bytes(png)
    return paths


def write_report(
    use_case: str, report: MonitoringReport, run_id: str, plots: dict[str, bytes]
) -> Path:
    """Write ``plots`` and ``report.md``, which links every PNG of the run's folder (the score
    plot is written earlier in the same run, by the drift step); return the report's path."""
    write_plots(use_case, report.as_of, run_id, plots)
    folder = report_folder(use_case, report.as_of, run_id)
    images = {p.stem: p.name for p in sorted(folder.glob("*.png"))}
    path = folder / "report.md"
    path.write_text(report.markdown(images))
    return path
