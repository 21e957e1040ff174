"""Exceptions and warnings raised by :mod:`models.explain`."""

from __future__ import annotations


class UnsupportedModelError(ValueError):
    """The model cannot be explained here (wrong booster, objective or split type)."""


class ShapInputError(ValueError):
    """The rows to explain do not fit the model (shape, feature names, dtypes or ±inf values)."""


class TreeShapFallbackWarning(UserWarning):
    """The tables were not built: values come from xgboost's ``pred_contribs``, far slower.

    Emitted once, by the constructor; ``TreeShapExplainer.fallback_reason`` says why.
    """
