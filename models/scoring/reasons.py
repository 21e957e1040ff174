"""Reason codes: the top features that pushed a score up, as stable codes.

The catalogue (declared by the use case, reviewed like code) maps every model feature to a
stable code and a human sentence. For each prediction the features with a positive SHAP value
are ranked by contribution (descending; ties by feature name, so the order is deterministic)
and the first ``k`` become its reasons, with the feature's value and contribution.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numba
import numpy as np
import polars as pl

from models.scoring.policy import Reason

TOP_K = 3


def check_catalogue(features: Sequence[str], catalogue: Mapping[str, Reason]) -> None:
    """Every model feature must have a reason; raise naming the ones that do not."""
    missing = [f for f in features if f not in catalogue]
    if missing:
        raise ValueError(f"reason catalogue has no entry for model features {missing}")


@dataclass(frozen=True)
class RankedReasons:
    """Each row's ``k`` largest contributions, descending (ties by feature name), as arrays:
    what the batch tables lay out as list columns and the service as JSON (one ranking)."""

    order: np.ndarray
    """(rows, k) feature indices."""
    contributions: np.ndarray
    """(rows, k) their SHAP values."""
    values: np.ndarray
    """(rows, k) float64 model inputs of those features (NaN: missing)."""
    positives: np.ndarray
    """(rows,) how many of the ``k`` are positive: the row's reasons are that prefix."""

    def rows(
        self, features: Sequence[str], catalogue: Mapping[str, Reason]
    ) -> list[dict[str, list]]:
        """Each row's reasons as the four lists of the reason columns (values NaN → None)."""
        out = []
        for n, order, values, contributions in zip(
            self.positives.tolist(),
            self.order.tolist(),
            self.values.tolist(),
            self.contributions.tolist(),
            strict=True,
        ):
            chosen = [features[j] for j in order[:n]]
            out.append(
                {
                    "reason_codes": [catalogue[f].code for f in chosen],
                    "reason_features": chosen,
                    "reason_values": [None if v != v else v for v in values[:n]],  # NaN → None
                    "reason_contributions": contributions[:n],
                }
            )
        return out


def rank_reasons(
    contributions: np.ndarray,
    values: np.ndarray,
    features: Sequence[str],
    catalogue: Mapping[str, Reason],
    k: int = TOP_K,
) -> RankedReasons:
    """Per row, the ``k`` largest contributions with their inputs (see ``RankedReasons``).

    ``contributions``: (rows, features) SHAP values without the bias column; ``values``: the
    model inputs (rows, features). Raises unless every feature is in ``catalogue``.
    """
    check_catalogue(features, catalogue)
    k = min(k, contributions.shape[1])
    order = _top_k_order(contributions, features, k)
    chosen = np.take_along_axis(contributions, order, axis=1)
    chosen_values = np.take_along_axis(values.astype(np.float64, copy=False), order, axis=1)
    positives = (chosen > 0).sum(axis=1)  # sorted descending: the positives are a prefix
    return RankedReasons(order, chosen, chosen_values, positives)


def reason_columns(
    ranked: RankedReasons, features: Sequence[str], catalogue: Mapping[str, Reason]
) -> pl.DataFrame:
    """The four reason list columns of ``ranked`` (one row per ranked row)."""
    rows, k = ranked.order.shape
    flat_order = pl.Series(ranked.order.reshape(-1))
    codes = pl.Series([catalogue[f].code for f in features]).gather(flat_order)
    names = pl.Series(list(features)).gather(flat_order)

    def column(name: str, flat: pl.Series | np.ndarray) -> pl.Expr:
        series = (
            flat if isinstance(flat, pl.Series) else pl.Series(flat.reshape(-1), nan_to_null=True)
        )
        lists = series.alias(name).reshape((rows, k)).arr.to_list()
        return pl.lit(lists).list.head(pl.col("_positives")).alias(name)

    return pl.DataFrame({"_positives": ranked.positives}).select(
        column("reason_codes", codes),
        column("reason_features", names),
        column("reason_values", ranked.values),
        column("reason_contributions", ranked.contributions),
    )


def _top_k_order(contributions: np.ndarray, features: Sequence[str], k: int) -> np.ndarray:
    """Column indices of each row's ``k`` largest values, descending, ties by feature name."""
    name_rank = np.argsort(np.argsort(np.asarray(features, dtype=object), kind="stable"))
    return _top_k(np.ascontiguousarray(contributions, dtype=np.float64), name_rank, k)


@numba.njit(cache=True, parallel=True)
def _top_k(values: np.ndarray, name_rank: np.ndarray, k: int) -> np.ndarray:  # pragma: no cover
    # One pass per row keeping a sorted top-k by (value desc, name rank asc): O(rows x features).
    rows, width = values.shape
    out = np.empty((rows, k), dtype=np.int64)
    for r in numba.prange(rows):
        count = 0
        for j in range(width):
            v = values[r, j]
            if np.isnan(v):
                v = -np.inf
            pos = count
            while pos > 0:
                prev = out[r, pos - 1]
                pv = values[r, prev]
                if np.isnan(pv):
                    pv = -np.inf
                if pv > v or (pv == v and name_rank[prev] < name_rank[j]):
                    break
                pos -= 1
            if pos < k:
                last = min(count, k - 1)
                for m in range(last, pos, -1):
                    out[r, m] = out[r, m - 1]
                out[r, pos] = j
                if count < k:
                    count += 1
    return out
