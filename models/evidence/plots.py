"""Plots of the evidence (PNG bytes, off-screen Agg canvas): LIME vs SHAP, fairness by group."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import polars as pl
from matplotlib.figure import Figure

DPI = 80


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    return buffer.getvalue()


def agreement_png(
    spearman: np.ndarray, shap: np.ndarray, lime: np.ndarray, names: Sequence[str], top: int = 12
) -> bytes:
    """Per-row Spearman correlations, and global importance by SHAP and by LIME side by side."""
    figure = Figure(figsize=(10.0, 4.0))
    left, right = figure.subplots(1, 2)
    finite = spearman[np.isfinite(spearman)]
    left.hist(finite, bins=np.linspace(-1, 1, 21), color="#4c72b0")
    if finite.size:
        left.axvline(float(finite.mean()), color="black", linestyle="--", label="mean")
        left.legend(loc="upper left")
    left.set(
        xlabel="Spearman correlation of |SHAP| and |LIME| (top features)",
        ylabel="rows",
        title=f"LIME vs SHAP agreement ({len(spearman)} rows)",
    )
    shap_mean = np.abs(shap).mean(axis=0)
    lime_mean = np.abs(lime).mean(axis=0)
    order = np.argsort(shap_mean)[-top:]
    y = np.arange(len(order))
    scale_s = shap_mean.max() or 1.0
    scale_l = lime_mean.max() or 1.0
    right.barh(y - 0.2, shap_mean[order] / scale_s, height=0.4, label="mean |SHAP|")
    right.barh(y + 0.2, lime_mean[order] / scale_l, height=0.4, label="mean |LIME|")
    right.set_yticks(y, [names[i] for i in order])
    right.set(xlabel="relative importance (max = 1)", title="global importance")
    right.legend(loc="lower right")
    return _png(figure)


def fairness_png(groups: pl.DataFrame) -> bytes:
    """Approval rate per group of each attribute, the four-fifths line of its reference."""
    attributes = groups["attribute"].unique(maintain_order=True).to_list()
    figure = Figure(figsize=(5.0 * max(len(attributes), 1), 4.0))
    axes = figure.subplots(1, max(len(attributes), 1), squeeze=False)[0]
    for ax, attribute in zip(axes, attributes, strict=False):
        rows = groups.filter(pl.col("attribute") == attribute).sort("group")
        colors = ["#c44e52" if a else "#4c72b0" for a in rows["alert"].to_list()]
        x = np.arange(rows.height)
        ax.bar(x, rows["approval_rate"].to_numpy(), color=colors)
        best = rows["approval_rate"].to_numpy() / rows["adverse_impact_ratio"].to_numpy()
        threshold = float(rows["min_adverse_impact_ratio"][0])
        reference = float(np.nanmax(best)) if np.isfinite(best).any() else 0.0
        ax.axhline(threshold * reference, color="black", linestyle="--", label=f"{threshold:g} ×")
        ax.set_xticks(x, rows["group"].to_list(), rotation=30)
        ax.set(ylim=(0, 1.05), ylabel="approval rate", title=f"{attribute}: approval by group")
        ax.legend(loc="lower right")
    return _png(figure)
