"""Evaluation plots as PNG bytes (ROC, precision–recall, calibration, SHAP summary).

Each plot function takes named series of (labels, probabilities), e.g. ``{"validation": (y, p),
"test": (y, p)}`` or ``{"challenger v3": …, "champion v2": …}``, and draws one curve per
name. Figures are rendered off-screen (Agg canvas, no pyplot), so no display is needed.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl
import xgboost as xgb
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from models.encoding import FeatureEncoding
from models.metrics import calibration_table, pr_auc, pr_curve, roc_auc, roc_curve
from models.training.train import TrainedModel

Series = Mapping[str, tuple[np.ndarray, np.ndarray]]
DPI = 80
SIZE = (5.0, 4.0)


def _figure(size: tuple[float, float] = SIZE) -> tuple[Figure, Axes]:
    # A bare Figure renders with the Agg canvas: no pyplot, no display, no global state.
    figure = Figure(figsize=size)
    return figure, figure.subplots()


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    return buffer.getvalue()


def roc_png(series: Series) -> bytes:
    """ROC curves with their AUC in the legend, and the chance diagonal."""
    figure, ax = _figure()
    for name, (y, p) in series.items():
        fpr, tpr = roc_curve(y, p)
        ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc(y, p):.3f})")
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    ax.legend(loc="lower right")
    return _png(figure)


def pr_png(series: Series) -> bytes:
    """Precision–recall curves with average precision in the legend, and each base rate."""
    figure, ax = _figure()
    for name, (y, p) in series.items():
        recall, precision = pr_curve(y, p)
        line = ax.step(recall, precision, where="post", label=f"{name} (AP {pr_auc(y, p):.3f})")
        ax.axhline(float(np.mean(y)), linestyle=":", color=line[0].get_color())
    ax.set(xlabel="recall", ylabel="precision", title="Precision–recall", ylim=(0, 1.02))
    ax.legend(loc="upper right")
    return _png(figure)


def calibration_png(series: Series, bins: int = 10) -> bytes:
    """Observed positive rate against mean predicted probability per bin (reliability diagram)."""
    figure, ax = _figure()
    top = 0.0
    for name, (y, p) in series.items():
        counts, mean_p, rate = calibration_table(y, p, bins)
        filled = counts > 0
        ax.plot(mean_p[filled], rate[filled], marker="o", label=name)
        top = max(top, float(np.nanmax(mean_p[filled])), float(np.nanmax(rate[filled])))
    top = min(1.0, top * 1.1 + 1e-3)
    ax.plot([0, top], [0, top], linestyle=":", color="grey")
    ax.set(
        xlabel="mean predicted probability",
        ylabel="observed positive rate",
        title="Calibration",
        xlim=(0, top),
        ylim=(0, top),
    )
    ax.legend(loc="upper left")
    return _png(figure)


def shap_summary_png(
    shap_values: np.ndarray, features: np.ndarray, names: Sequence[str], top: int = 15
) -> bytes:
    """Beeswarm-style SHAP summary: the ``top`` features by mean |SHAP|, one dot per row.

    ``shap_values`` is ``(rows, features)`` (bias column removed); dot colour is the feature's
    value scaled to its 5th–95th percentile (grey when missing). No rows: the axes alone.
    """
    importance = np.abs(shap_values).mean(axis=0) if len(shap_values) else np.zeros(len(names))
    order = np.argsort(importance)[::-1][:top][::-1]  # most important at the top of the plot
    rng = np.random.default_rng(0)
    figure, ax = _figure((6.5, 0.35 * len(order) + 1.2))
    for row, index in enumerate(order):
        values, raw = shap_values[:, index], features[:, index]
        lo, hi = np.nanpercentile(raw, [5, 95]) if np.isfinite(raw).any() else (0.0, 1.0)
        colour = np.clip((raw - lo) / (hi - lo if hi > lo else 1.0), 0, 1)
        jitter = rng.uniform(-0.3, 0.3, size=values.size)
        missing = ~np.isfinite(raw)
        ax.scatter(values[missing], row + jitter[missing], s=4, color="lightgrey")
        points = ax.scatter(
            values[~missing], row + jitter[~missing], s=4, c=colour[~missing], cmap="coolwarm"
        )
    ax.set_yticks(range(len(order)), [names[i] for i in order])
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.set(xlabel="SHAP value (log-odds)", title="SHAP summary (validation)")
    if len(order):
        figure.colorbar(points, ax=ax, label="feature value (low → high)", ticks=[])
    return _png(figure)


def markdown_image(png: bytes, alt: str) -> str:
    """Markdown embedding ``png`` as a base64 data URI (Dagster metadata renders it inline)."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"


def shap_values(booster: xgb.Booster, features: np.ndarray) -> np.ndarray:
    """Exact TreeSHAP values ``(rows, features)`` in log-odds, bias column dropped.

    xgboost's ``pred_contribs`` is used: for the few thousand rows of a summary plot it is
    faster than ``models.explain.TreeShapExplainer``, whose table build and kernel compile pay
    off on large scoring batches.
    """
    matrix = xgb.DMatrix(features, feature_names=booster.feature_names, missing=np.nan)
    return booster.predict(matrix, pred_contribs=True)[:, :-1]


def training_plots(
    model: TrainedModel,
    encoding: FeatureEncoding,
    validation: pl.DataFrame,
    shap_rows: int = 2000,
) -> dict[str, bytes]:
    """Artifacts of a training run: ROC / PR / calibration on validation and test, and the
    SHAP summary of up to ``shap_rows`` validation rows (a seeded sample)."""
    series = {
        name: (rows[encoding.label].to_numpy(), rows["prediction"].to_numpy())
        for name, rows in model.predictions.items()
    }
    sample = validation.sample(min(shap_rows, validation.height), seed=model.params.seed)
    features = encoding.matrix(sample)
    return {
        "plots/roc.png": roc_png(series),
        "plots/pr.png": pr_png(series),
        "plots/calibration.png": calibration_png(series),
        "plots/shap_summary.png": shap_summary_png(
            shap_values(model.booster, features), features, encoding.names
        ),
    }
