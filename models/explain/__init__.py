"""Exact, fast TreeSHAP explanations of xgboost models.

>>> explainer = TreeShapExplainer(booster)
>>> values = explainer.shap_values(X)   # (rows, n_features + 1), bias last, margin space
"""

from models.explain.errors import ShapInputError, TreeShapFallbackWarning, UnsupportedModelError
from models.explain.explainer import TreeShapExplainer

__all__ = [
    "ShapInputError",
    "TreeShapExplainer",
    "TreeShapFallbackWarning",
    "UnsupportedModelError",
]
