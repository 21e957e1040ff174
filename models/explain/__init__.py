"""Exact, fast TreeSHAP explanations of xgboost models, and their exact prediction of a few rows.

>>> explainer = TreeShapExplainer(booster)
>>> values = explainer.shap_values(X)   # (rows, n_features + 1), bias last, margin space
>>> TreePredictor(booster).predict(X)   # bit-identical to booster.inplace_predict(X)
"""

from models.explain.errors import ShapInputError, TreeShapFallbackWarning, UnsupportedModelError
from models.explain.explainer import TreeShapExplainer
from models.explain.predictor import PredictorMismatch, TreePredictor

__all__ = [
    "PredictorMismatch",
    "ShapInputError",
    "TreePredictor",
    "TreeShapExplainer",
    "TreeShapFallbackWarning",
    "UnsupportedModelError",
]
