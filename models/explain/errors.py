"""Exceptions raised by :mod:`models.explain`."""

from __future__ import annotations


class UnsupportedModelError(ValueError):
    """The model cannot be explained here (wrong booster, objective or split type)."""


class ShapInputError(ValueError):
    """The rows to explain do not fit the model (shape, feature names or dtypes)."""
