"""Paired evidence of a shadow model against the champion on the same matured outcomes.

The rows are the entities both models scored in the same scoring runs (same feature rows),
whose labels have matured (``models.lifecycle.shadow``). On them, for each model: ROC-AUC,
PR-AUC (average precision), expected calibration error, calibration in the large (mean score −
observed rate) and the use case's business value at its decision threshold; for the shadow
model the stability of its score from one shadow day to the next (PSI between consecutive
days). The differences (shadow − champion) of ROC-AUC, PR-AUC and business value get
bootstrap confidence intervals.

The bootstrap resamples *entities* (an entity scored on several days contributes correlated
rows; resampling rows would make the intervals too narrow): each replicate draws a Poisson(1)
weight per entity, applied to all its rows, and both models are evaluated on the same
replicate, so the interval is of the paired difference. Seeded: the same rows give the same
intervals.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import polars as pl

from models.metrics import expected_calibration_error
from models.monitoring.drift import numeric_psi

CHAMPION_SCORE, SHADOW_SCORE, VALUE = "champion_score", "challenger_score", "value"


@dataclass(frozen=True)
class BusinessValue:
    """What acting on a score is worth, counted at the decision threshold: every row at or
    above it is acted on at ``cost_per_action``; each acted-on positive returns
    ``value_multiple`` × its ``value_feature`` (1 without one). Churn: outreach to customers
    above the threshold, a saved customer keeps ``value_multiple`` months of MRR."""

    name: str = "expected value at the decision threshold"
    value_feature: str | None = None
    value_multiple: float = 1.0
    cost_per_action: float = 0.0

    def of(self, y: np.ndarray, p: np.ndarray, value: np.ndarray, threshold: float) -> np.ndarray:
        """Per-row value of acting on ``p`` (sum it, with weights, for the total)."""
        acted = p >= threshold
        return np.where(acted, y * self.value_multiple * value - self.cost_per_action, 0.0)


@dataclass(frozen=True)
class Interval:
    """A point estimate with its bootstrap confidence interval."""

    estimate: float
    low: float
    high: float

    def excludes_zero_above(self) -> bool:
        return self.low > 0


@dataclass(frozen=True)
class PairedEvidence:
    """Everything the gate judges a shadow model on (see the module docstring)."""

    rows: int
    entities: int
    positives: int
    days: int
    champion: dict[str, float]
    shadow: dict[str, float]
    difference: dict[str, Interval]
    stability_psi: float
    """Largest PSI between the shadow model's score distributions of consecutive days."""
    confidence: float
    bootstrap_samples: int
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            **{k: v for k, v in asdict(self).items() if k != "difference"},
            "difference": {k: asdict(v) for k, v in self.difference.items()},
        }


def weighted_roc_auc(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> float:
    """ROC-AUC with row weights: weighted P(score of a positive > a negative), ties ½."""
    if not y.size:
        return math.nan
    order = np.argsort(p, kind="mergesort")
    p, y, w = p[order], y[order], w[order]
    starts = np.r_[0, np.flatnonzero(np.diff(p)) + 1]
    positive = np.add.reduceat(w * y, starts)
    negative = np.add.reduceat(w * (1 - y), starts)
    total_pos, total_neg = positive.sum(), negative.sum()
    if total_pos <= 0 or total_neg <= 0:
        return math.nan
    below = np.cumsum(negative) - negative
    return float(np.sum(positive * (below + 0.5 * negative)) / (total_pos * total_neg))


def weighted_pr_auc(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> float:
    """Average precision with row weights (step-wise, over distinct thresholds)."""
    if not y.size:
        return math.nan
    order = np.argsort(-p, kind="mergesort")
    p, y, w = p[order], y[order], w[order]
    starts = np.r_[0, np.flatnonzero(np.diff(p)) + 1]
    tp = np.cumsum(np.add.reduceat(w * y, starts))
    fp = np.cumsum(np.add.reduceat(w * (1 - y), starts))
    if tp[-1] <= 0:
        return math.nan
    precision = tp / np.maximum(tp + fp, 1e-300)
    recall_step = np.diff(np.r_[0.0, tp]) / tp[-1]
    return float(np.sum(recall_step * precision))


def _model_metrics(
    y: np.ndarray, p: np.ndarray, value: np.ndarray, business: BusinessValue, threshold: float
) -> dict[str, float]:
    names = ("roc_auc", "pr_auc", "ece", "calibration_in_the_large", "mean_score")
    if not y.size:
        return dict.fromkeys((*names, "observed_rate", "acted_share", "business_value"), math.nan)
    ones = np.ones_like(p)
    return {
        "roc_auc": weighted_roc_auc(y, p, ones),
        "pr_auc": weighted_pr_auc(y, p, ones),
        "ece": expected_calibration_error(y, p),
        "calibration_in_the_large": float(p.mean() - y.mean()),
        "mean_score": float(p.mean()),
        "observed_rate": float(y.mean()),
        "acted_share": float((p >= threshold).mean()),
        "business_value": float(business.of(y, p, value, threshold).sum()),
    }


def stability(rows: pl.DataFrame, score: str = SHADOW_SCORE) -> float:
    """Largest PSI between the score distributions of consecutive shadow days (0 with one)."""
    days = sorted(rows["as_of_date"].unique().to_list())
    worst = 0.0
    for before, after in itertools.pairwise(days):
        a = rows.filter(pl.col("as_of_date") == before)[score].to_numpy()
        b = rows.filter(pl.col("as_of_date") == after)[score].to_numpy()
        psi = numeric_psi(a, b)
        if not math.isnan(psi):
            worst = max(worst, psi)
    return worst


def paired_evidence(
    rows: pl.DataFrame,
    label: str,
    key: str,
    *,
    business: BusinessValue,
    threshold: float,
    samples: int = 400,
    confidence: float = 0.95,
    seed: int = 0,
) -> PairedEvidence:
    """Metrics of both models and bootstrap intervals of their differences on ``rows``
    (``as_of_date``, ``key``, ``label``, ``champion_score``, ``challenger_score``, ``value``)."""
    y = rows[label].to_numpy().astype(np.float64)
    champion = rows[CHAMPION_SCORE].to_numpy().astype(np.float64)
    shadow = rows[SHADOW_SCORE].to_numpy().astype(np.float64)
    value = (
        rows[VALUE].fill_null(0.0).to_numpy().astype(np.float64)
        if VALUE in rows.columns
        else np.ones_like(y)
    )
    notes = []
    both = 0 < y.sum() < y.size
    if not both:
        notes.append("the matured rows hold one class only: ranking metrics are undefined")
    metrics = [_model_metrics(y, p, value, business, threshold) for p in (champion, shadow)]
    entity = rows[key].cast(pl.Categorical).to_physical().to_numpy()
    difference = _bootstrap(
        y, champion, shadow, value, entity, business, threshold, samples, confidence, seed
    )
    return PairedEvidence(
        rows=rows.height,
        entities=int(np.unique(entity).size) if entity.size else 0,
        positives=int(y.sum()),
        days=rows["as_of_date"].n_unique(),
        champion=metrics[0],
        shadow=metrics[1],
        difference=difference,
        stability_psi=stability(rows) if rows.height else math.nan,
        confidence=confidence,
        bootstrap_samples=samples,
        notes=notes,
    )


def _bootstrap(
    y: np.ndarray,
    champion: np.ndarray,
    shadow: np.ndarray,
    value: np.ndarray,
    entity: np.ndarray,
    business: BusinessValue,
    threshold: float,
    samples: int,
    confidence: float,
    seed: int,
) -> dict[str, Interval]:
    """Paired differences (shadow − champion) and their percentile intervals."""
    ones = np.ones_like(y)
    gain_c = business.of(y, champion, value, threshold)
    gain_s = business.of(y, shadow, value, threshold)

    def differences(w: np.ndarray) -> tuple[float, float, float]:
        return (
            weighted_roc_auc(y, shadow, w) - weighted_roc_auc(y, champion, w),
            weighted_pr_auc(y, shadow, w) - weighted_pr_auc(y, champion, w),
            float(np.sum(w * (gain_s - gain_c))),
        )

    point = differences(ones) if y.size else (math.nan,) * 3
    draws = np.full((samples, 3), math.nan)
    if y.size and samples:
        rng = np.random.default_rng(seed)
        entities = int(entity.max()) + 1
        for i in range(samples):
            draws[i] = differences(rng.poisson(1.0, entities)[entity].astype(np.float64))
    tail = (1 - confidence) / 2 * 100
    names = ("roc_auc", "pr_auc", "business_value")
    out = {}
    for j, name in enumerate(names):
        column = draws[:, j][~np.isnan(draws[:, j])]
        low, high = (
            (float(np.percentile(column, tail)), float(np.percentile(column, 100 - tail)))
            if column.size
            else (math.nan, math.nan)
        )
        out[name] = Interval(float(point[j]), low, high)
    return out
