"""Distribution drift between a reference sample and a current one.

* Numeric features: PSI over 10 quantile bins of the reference (edges are the reference's
  deciles, deduplicated for discrete features, open-ended at both ends), plus the two-sample
  Kolmogorov–Smirnov test (``scipy.stats.ks_2samp``).
* Categorical features: PSI over the categories and Pearson's χ² test of homogeneity on the
  2 × k contingency table (``scipy.stats.chi2_contingency``).

Nulls are left out of the distributions; null rates are compared by ``diagnosis``, where a
jump means a pipeline fault rather than drift. Empty bins get a proportion of ``epsilon``
(PSI is infinite otherwise).

A feature's status is ``alert`` / ``warn`` when its PSI reaches the alert / warn threshold AND
the test rejects "same distribution" at ``p_value``: PSI measures how much a distribution
moved, the test guards against noise of small samples (with n rows per side, PSI of identical
distributions is ≈ (bins − 1) · 2 / n, i.e. 0.26 for n = 70).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import polars as pl
from scipy.stats import chi2_contingency, ks_2samp

from models.monitoring.policy import SEVERITY, DriftThresholds
from models.monitoring.tables import DRIFT_SCHEMA

NUMERIC, CATEGORICAL = "numeric", "categorical"


def _psi(reference: np.ndarray, current: np.ndarray, epsilon: float) -> float:
    """PSI of two count vectors: Σ (c − r) · ln(c / r) over proportions floored at epsilon."""
    r = np.maximum(reference / max(reference.sum(), 1), epsilon)
    c = np.maximum(current / max(current.sum(), 1), epsilon)
    return float(np.sum((c - r) * np.log(c / r)))


def quantile_edges(reference: np.ndarray, bins: int) -> np.ndarray:
    """Inner bin edges: the reference's 1/bins … (bins−1)/bins quantiles, deduplicated."""
    return np.unique(np.quantile(reference, np.arange(1, bins) / bins))


def numeric_psi(
    reference: np.ndarray, current: np.ndarray, bins: int = 10, epsilon: float = 1e-4
) -> float:
    """PSI of ``current`` against ``reference`` over the reference's quantile bins."""
    reference, current = _finite(reference), _finite(current)
    if not reference.size or not current.size:
        return math.nan
    edges = quantile_edges(reference, bins)
    return _psi(_bin_counts(reference, edges), _bin_counts(current, edges), epsilon)


def _bin_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    # side="right": a value equal to an edge goes above it, so a point mass sits in one bin.
    return np.bincount(np.searchsorted(edges, values, side="right"), minlength=edges.size + 1)


def ks_test(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """Two-sample KS statistic and p-value (NaN when a side has no values)."""
    reference, current = _finite(reference), _finite(current)
    if not reference.size or not current.size:
        return math.nan, math.nan
    result = ks_2samp(reference, current)
    return float(result.statistic), float(result.pvalue)


def category_counts(reference: pl.Series, current: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """Counts per category (the union of both sides' non-null values), aligned."""
    categories = sorted(set(reference.drop_nulls().to_list()) | set(current.drop_nulls().to_list()))
    counts = [s.drop_nulls().value_counts() for s in (reference, current)]
    aligned = [
        np.array([dict(zip(c[:, 0], c[:, 1], strict=True)).get(k, 0) for k in categories])
        for c in counts
    ]
    return aligned[0], aligned[1]


def categorical_psi(reference: pl.Series, current: pl.Series, epsilon: float = 1e-4) -> float:
    """PSI over categories (a category unseen on one side counts ``epsilon`` there)."""
    ref, cur = category_counts(reference, current)
    return _psi(ref, cur, epsilon) if ref.sum() and cur.sum() else math.nan


def chi2_pvalue(reference: pl.Series, current: pl.Series) -> float:
    """χ² test of homogeneity of the two category distributions (1.0 with one category)."""
    ref, cur = category_counts(reference, current)
    if not ref.sum() or not cur.sum():
        return math.nan
    if ref.size < 2:
        return 1.0
    return float(chi2_contingency(np.vstack([ref, cur])).pvalue)


def column_drift(
    name: str, reference: pl.Series, current: pl.Series, thresholds: DriftThresholds
) -> dict[str, object]:
    """One drift row: PSI, tests, rows, null rates and status of one column."""
    categorical = reference.dtype == pl.String
    if categorical:
        psi = categorical_psi(reference, current, thresholds.epsilon)
        ks_stat, ks_p, chi2_p = math.nan, math.nan, chi2_pvalue(reference, current)
        p_value = chi2_p
    else:
        ref, cur = (_values(s) for s in (reference, current))
        psi = numeric_psi(ref, cur, thresholds.bins, thresholds.epsilon)
        (ks_stat, ks_p), chi2_p = ks_test(ref, cur), math.nan
        p_value = ks_p
    return {
        "feature": name,
        "kind": CATEGORICAL if categorical else NUMERIC,
        "psi": psi,
        "ks_statistic": ks_stat,
        "ks_pvalue": ks_p,
        "chi2_pvalue": chi2_p,
        "reference_rows": reference.len(),
        "current_rows": current.len(),
        "reference_null_rate": _null_rate(reference),
        "current_null_rate": _null_rate(current),
        "status": thresholds.status(psi, p_value),
    }


def drift_table(
    reference: pl.DataFrame,
    current: pl.DataFrame,
    columns: Mapping[str, pl.DataType] | list[str],
    thresholds: DriftThresholds | None = None,
) -> pl.DataFrame:
    """Drift of every column of ``columns`` present in both frames, most severe first."""
    thresholds = thresholds or DriftThresholds()
    rows = [
        column_drift(c, reference[c], current[c], thresholds)
        for c in columns
        if c in reference.columns and c in current.columns
    ]
    frame = pl.DataFrame(rows, schema=DRIFT_SCHEMA)
    return sort_by_severity(frame)


def sort_by_severity(frame: pl.DataFrame) -> pl.DataFrame:
    """Rows ordered by status (alert, warn, ok), then by PSI descending."""
    return frame.sort(
        pl.col("status").replace_strict(SEVERITY, default=0, return_dtype=pl.Int64),
        pl.col("psi").fill_nan(None),
        descending=True,
        nulls_last=True,
    )


def _values(series: pl.Series) -> np.ndarray:
    return series.cast(pl.Float64).drop_nulls().to_numpy()


def _finite(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    return values[np.isfinite(values)]


def _null_rate(series: pl.Series) -> float:
    if not series.len():
        return math.nan
    nulls = series.null_count()
    if series.dtype.is_float():
        nulls += int(series.is_nan().sum() or 0)
    return nulls / series.len()
