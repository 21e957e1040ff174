"""Binary-classification metrics of predicted probabilities, in numpy/scipy only (no sklearn).

Every function takes ``y`` (0/1 labels) and ``p`` (predicted probabilities) of equal length.
Ranking metrics (ROC-AUC, PR-AUC, KS) need both classes present and raise ``ValueError``
otherwise; the probability metrics (log loss, Brier, ECE) do not.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
from scipy.stats import rankdata

LOG_LOSS_EPS = 1e-15
ECE_BINS = 10
LIFT_FRACTION = 0.10
METRIC_NAMES = ("roc_auc", "pr_auc", "log_loss", "brier", "ks", "lift_at_10pct", "ece")


def _arrays(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=np.float64).ravel()
    p = np.asarray(p, dtype=np.float64).ravel()
    if y.shape != p.shape or y.size == 0:
        raise ValueError(f"labels and probabilities must be non-empty and equal length: {y.size}")
    return y, p


def _both_classes(y: np.ndarray, metric: str) -> None:
    positives = int(y.sum())
    if positives == 0 or positives == y.size:
        raise ValueError(f"{metric} needs both classes; got {positives} positives of {y.size}")


def roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the ROC curve: P(score of a positive > score of a negative), ties count ½.

    Computed from average ranks (Mann–Whitney U), O(n log n).
    """
    y, p = _arrays(y, p)
    _both_classes(y, "ROC-AUC")
    ranks = rankdata(p)
    n_pos = y.sum()
    n_neg = y.size - n_pos
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _descending_thresholds(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative true and false positives at each distinct score, highest score first."""
    order = np.argsort(-p, kind="stable")
    p_sorted, y_sorted = p[order], y[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(p_sorted)), y.size - 1]
    tps = np.cumsum(y_sorted)[last_of_tie]
    fps = (last_of_tie + 1) - tps
    return tps, fps


def roc_curve(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False and true positive rates at each distinct threshold, starting at (0, 0)."""
    y, p = _arrays(y, p)
    _both_classes(y, "ROC curve")
    tps, fps = _descending_thresholds(y, p)
    return np.r_[0.0, fps / (y.size - y.sum())], np.r_[0.0, tps / y.sum()]


def pr_curve(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Recall and precision at each distinct threshold, highest threshold first."""
    y, p = _arrays(y, p)
    _both_classes(y, "PR curve")
    tps, fps = _descending_thresholds(y, p)
    return tps / y.sum(), tps / (tps + fps)


def pr_auc(y: np.ndarray, p: np.ndarray) -> float:
    """Average precision: Σ (recallₖ − recallₖ₋₁) · precisionₖ over distinct score thresholds.

    The step-wise area under the precision–recall curve (no interpolation), as scikit-learn's
    ``average_precision_score`` defines it.
    """
    recall, precision = pr_curve(y, p)
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    """Mean negative log-likelihood, probabilities clipped to [1e-15, 1 − 1e-15]."""
    y, p = _arrays(y, p)
    p = np.clip(p, LOG_LOSS_EPS, 1 - LOG_LOSS_EPS)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def brier(y: np.ndarray, p: np.ndarray) -> float:
    """Mean squared difference between probability and outcome."""
    y, p = _arrays(y, p)
    return float(np.mean((p - y) ** 2))


def ks_statistic(y: np.ndarray, p: np.ndarray) -> float:
    """Kolmogorov–Smirnov statistic: max |CDF of positives' scores − CDF of negatives' scores|.

    Equals ``scipy.stats.ks_2samp(p[y == 1], p[y == 0]).statistic``.
    """
    fpr, tpr = roc_curve(y, p)
    return float(np.max(np.abs(tpr - fpr)))


def lift_at(y: np.ndarray, p: np.ndarray, fraction: float = LIFT_FRACTION) -> float:
    """Positive rate among the top ``fraction`` of rows by score, over the overall positive rate.

    The top is the ``ceil(fraction · n)`` highest scores; ties at the cut keep input order.
    """
    y, p = _arrays(y, p)
    _both_classes(y, "lift")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    top = np.argsort(-p, kind="stable")[: math.ceil(fraction * y.size)]
    return float(y[top].mean() / y.mean())


def calibration_table(
    y: np.ndarray, p: np.ndarray, bins: int = ECE_BINS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per equal-width probability bin: rows, mean probability, observed positive rate.

    Bin b holds probabilities in ``[b/bins, (b+1)/bins)``; the last bin includes 1. Empty bins
    have NaN means.
    """
    y, p = _arrays(y, p)
    index = np.minimum((p * bins).astype(np.int64), bins - 1)
    counts = np.bincount(index, minlength=bins).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.bincount(index, weights=p, minlength=bins) / counts
        rate = np.bincount(index, weights=y, minlength=bins) / counts
    return counts, mean_p, rate


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = ECE_BINS) -> float:
    """Σ_b (n_b / n) · |observed positive rate in b − mean probability in b| over the bins of
    ``calibration_table``."""
    counts, mean_p, rate = calibration_table(y, p, bins)
    filled = counts > 0
    return float(np.sum(counts[filled] * np.abs(rate[filled] - mean_p[filled])) / counts.sum())


def binary_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """Every metric of ``METRIC_NAMES`` for one set of rows."""
    return {
        "roc_auc": roc_auc(y, p),
        "pr_auc": pr_auc(y, p),
        "log_loss": log_loss(y, p),
        "brier": brier(y, p),
        "ks": ks_statistic(y, p),
        "lift_at_10pct": lift_at(y, p),
        "ece": expected_calibration_error(y, p),
    }


def truth_comparison(
    rows: pl.DataFrame,
    truth: pl.DataFrame,
    *,
    key: str,
    label: str,
    truth_column: str,
    prediction: str = "prediction",
) -> dict[str, float]:
    """ROC-AUC of the model and of a simulator's truth on the same labelled rows.

    ``rows`` has ``key``, ``as_of_date``, ``label`` and ``prediction``; ``truth`` has ``key``,
    ``as_of_date`` (the day the truth was computed, at its end) and ``truth_column``. The truth
    computed at the end of day ``A − 1`` is the probability of the event over the window of the
    label as-of ``A`` (whose features also stop at ``A − 1``), so row ``A`` joins truth
    ``A − 1``. Rows without truth are dropped from both scores; ``rows_matched`` says how many
    remained.
    """
    aligned = truth.select(
        key,
        (pl.col("as_of_date") + pl.duration(days=1)).alias("as_of_date"),
        truth_column,
    )
    joined = rows.join(aligned, on=[key, "as_of_date"], how="inner")
    y = joined[label].to_numpy()
    return {
        "rows": float(rows.height),
        "rows_matched": float(joined.height),
        "model_roc_auc": roc_auc(y, joined[prediction].to_numpy()),
        "truth_roc_auc": roc_auc(y, joined[truth_column].to_numpy()),
    }
