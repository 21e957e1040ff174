"""Training-set frame → xgboost feature matrix, with the feature contract of ``churn_v1``.

Categorical strings become stable integer codes (their index in the landing vocabulary), so a code
means the same category in every model and every scoring run; a value outside the vocabulary
(or null) becomes NaN, which xgboost treats as missing. Numeric nulls stay NaN for the same
reason. Codes are plain numeric features, not xgboost categorical splits: the project's TreeSHAP
explainer (``models.explain``) refuses categorical splits.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import polars as pl

from lakehouse.features import CHURN_V1_FEATURES
from lakehouse.landing import CHANNELS, INDUSTRIES, PLANS, REGIONS

FEATURE_SERVICE = "churn_v1"
LABEL = "churned_30d"
KEY_COLUMNS = ("customer_id", "as_of_date", "event_timestamp")
CATEGORIES: dict[str, tuple[str, ...]] = {
    "plan": PLANS,
    "region": REGIONS,
    "industry": INDUSTRIES,
    "acquisition_channel": CHANNELS,
}
"""Vocabulary of each categorical feature; the code of a value is its index here."""


class FeatureListError(ValueError):
    """The frame's feature columns differ from the feature service's (names or types)."""


def feature_names(features: Mapping[str, pl.DataType] = CHURN_V1_FEATURES) -> list[str]:
    """Model input columns, in the feature service's order (the matrix column order)."""
    return list(features)


def check_feature_columns(
    frame: pl.DataFrame, features: Mapping[str, pl.DataType] = CHURN_V1_FEATURES
) -> None:
    """Raise ``FeatureListError`` naming missing, unexpected and mistyped feature columns.

    Key and label columns (``customer_id``, ``as_of_date``, ``event_timestamp``,
    ``churned_30d``) are not features and may or may not be present.
    """
    present = [c for c in frame.columns if c not in (*KEY_COLUMNS, LABEL)]
    missing = [c for c in features if c not in frame.columns]
    extra = [c for c in present if c not in features]
    mistyped = [
        f"{c} is {frame.schema[c]}, expected {t}"
        for c, t in features.items()
        if c in frame.columns and frame.schema[c] != t and frame.schema[c] != pl.Null
    ]
    problems = []
    if missing:
        problems.append(f"missing features {missing}")
    if extra:
        problems.append(f"unexpected features {extra}")
    if mistyped:
        problems.append("wrong types: " + "; ".join(mistyped))
    if problems:
        raise FeatureListError(
            f"feature columns differ from feature service {FEATURE_SERVICE!r} "
            f"({len(features)} features): " + "; ".join(problems)
        )


def feature_matrix(
    frame: pl.DataFrame, features: Mapping[str, pl.DataType] = CHURN_V1_FEATURES
) -> np.ndarray:
    """The ``(rows, features)`` float32 matrix of ``frame`` in ``feature_names()`` order.

    Checks the feature columns first (``FeatureListError``). Categoricals map to their
    vocabulary code, unknown or null → NaN; numeric nulls → NaN.
    """
    check_feature_columns(frame, features)
    columns = [_encoded(name) for name in features]
    return frame.select(columns).to_numpy().astype(np.float32, copy=False)


def _encoded(name: str) -> pl.Expr:
    vocabulary = CATEGORIES.get(name)
    if vocabulary is None:
        return pl.col(name).cast(pl.Float32)
    codes = list(range(len(vocabulary)))
    return (
        pl.col(name)
        .replace_strict(list(vocabulary), codes, default=None, return_dtype=pl.Int32)
        .cast(pl.Float32)
    )


def feature_spec(features: Mapping[str, pl.DataType] = CHURN_V1_FEATURES) -> dict[str, Any]:
    """The model's input contract as JSON-ready data (logged next to the model)."""
    return {
        "feature_service": FEATURE_SERVICE,
        "label": LABEL,
        "features": [
            {
                "name": name,
                "type": str(dtype),
                "encoding": (
                    {"kind": "category_code", "vocabulary": list(CATEGORIES[name])}
                    if name in CATEGORIES
                    else {"kind": "numeric"}
                ),
            }
            for name, dtype in features.items()
        ],
        "missing": "NaN (xgboost missing value): numeric nulls and unknown categories",
    }
