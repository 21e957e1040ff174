"""Which trees and which ``missing`` value xgboost's own prediction uses for a model (xgboost 3.2).

The explainer must explain the prediction the caller gets, so it resolves both settings the way
``XGBModel.predict`` (sklearn estimators) and ``Booster.predict`` do:

- iteration range: ``Booster.predict`` uses every iteration by default, also when the Booster
  carries a ``best_iteration`` attribute from early stopping; ``(begin, end)`` selects the
  iterations ``begin <= i < end``, an ``end`` of 0 meaning "up to the last one". An sklearn
  estimator passes ``(0, best_iteration + 1)`` instead when it was trained with early stopping and
  the range is not given or its ``end`` is 0 (``XGBModel._get_iteration_range``).
- missing: a value is missing when it is NaN or equals ``missing`` once both are rounded to
  float32. A DMatrix defaults to NaN; an sklearn estimator passes its ``missing`` attribute.
"""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Sequence
from typing import Any

import xgboost as xgb

IterationRange = tuple[int, int]


def iteration_range_of(
    model: object, requested: Sequence[int] | None, num_boosted_rounds: int
) -> IterationRange:
    """The iterations ``[begin, end)`` that ``model``'s prediction uses, with ``end`` resolved.

    ``requested`` means what ``iteration_range`` means to the model's ``predict``. Raises
    ``ValueError`` for what xgboost refuses (an ``end`` past the last iteration, ``begin > end``)
    and for negative or non-integer bounds.
    """
    wanted = None if requested is None else _pair(requested)
    if isinstance(model, xgb.XGBModel) and (wanted is None or wanted[1] == 0):
        try:
            wanted = (0, model.best_iteration + 1)  # trained with early stopping
        except AttributeError:
            wanted = (0, 0)
    begin, end = wanted or (0, 0)
    if end == 0:
        end = num_boosted_rounds
    if end > num_boosted_rounds:
        raise ValueError(
            f"iteration_range {tuple(wanted or ())} is out of range: the model has "
            f"{num_boosted_rounds} boosted rounds"
        )
    if begin > end:
        raise ValueError(f"iteration_range {tuple(wanted or ())}: begin {begin} is after end {end}")
    return begin, end


def missing_of(model: object, requested: float | None) -> float:
    """The ``missing`` value prediction uses: ``requested``, else the estimator's, else NaN.

    ``None`` means "not given"; an estimator whose ``missing`` is ``None`` gets NaN, as a DMatrix
    reads it.
    """
    value: Any = requested
    if value is None and isinstance(model, xgb.XGBModel):
        value = model.missing
    if value is None:
        value = math.nan
    if not isinstance(value, numbers.Real):
        raise ValueError(f"missing must be a real number (NaN by default), got {value!r}")
    return float(value)


def _pair(requested: Sequence[int]) -> IterationRange:
    try:
        items = () if isinstance(requested, str | bytes) else tuple(requested)
    except TypeError:
        items = ()
    if len(items) != 2:
        raise ValueError(f"iteration_range must be a pair (begin, end), got {requested!r}")
    try:
        begin, end = (operator.index(v) for v in items)
    except TypeError as exc:
        raise ValueError(f"iteration_range must hold integers, got {items!r}") from exc
    if begin < 0 or end < 0:
        raise ValueError(f"iteration_range must be non-negative, got {(begin, end)!r}")
    return int(begin), int(end)
