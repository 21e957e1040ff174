"""Per-run scoring plots: global SHAP importance (bar), SHAP beeswarm, score distribution."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from models.plots import _figure, _png, shap_summary_png


def shap_bar_png(shap_values: np.ndarray, names: Sequence[str], top: int = 15) -> bytes:
    """Mean |SHAP| per feature, the ``top`` largest, most important at the top."""
    importance = np.abs(shap_values).mean(axis=0) if len(shap_values) else np.zeros(len(names))
    order = np.argsort(importance)[::-1][:top][::-1]
    figure, ax = _figure((6.0, 0.3 * len(order) + 1.2))
    ax.barh([names[i] for i in order], importance[order], color="#4c72b0")
    ax.set(xlabel="mean |SHAP| (log-odds)", title="Global feature importance (this run)")
    return _png(figure)


def score_histogram_png(scores: np.ndarray, thresholds: Sequence[float]) -> bytes:
    """Distribution of scores with the band/decision thresholds marked."""
    figure, ax = _figure((6.0, 3.5))
    ax.hist(scores, bins=50, color="#55a868")
    for threshold in thresholds:
        ax.axvline(threshold, color="grey", linestyle="--", linewidth=0.8)
    ax.set(xlabel="score (probability)", ylabel="entities", title="Score distribution")
    return _png(figure)


def write_run_plots(
    folder: Path,
    scores: np.ndarray,
    shap_values: np.ndarray,
    inputs: np.ndarray,
    names: Sequence[str],
    thresholds: Sequence[float],
) -> dict[str, bytes]:
    """Render the run's plots, save them as PNG files in ``folder`` and return them by name."""
    plots = {
        "shap_importance": shap_bar_png(shap_values, names),
        "shap_beeswarm": shap_summary_png(shap_values, inputs, names),
        "score_distribution": score_histogram_png(scores, thresholds),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, png in plots.items():
        (folder / f"{name}.png").write_bytes(png)
    return plots
