"""Feature frame → xgboost feature matrix, with the feature contract of a use case's service.

Categorical strings become stable integer codes (their index in the declared vocabulary), so a
code means the same category in every model and every scoring run; a value outside the
vocabulary (or null) becomes NaN, which xgboost treats as missing. Numeric nulls stay NaN for the
same reason. Codes are plain numeric features, not xgboost categorical splits: the project's
TreeSHAP explainer (``models.explain``) refuses categorical splits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import polars as pl

AS_OF = "as_of_date"
EVENT_TIMESTAMP = "event_timestamp"


class FeatureListError(ValueError):
    """The frame's feature columns differ from the feature service's (names or types)."""


@dataclass(frozen=True)
class FeatureEncoding:
    """A model's input contract: the service's features in order, vocabularies and label."""

    feature_service: str
    features: Mapping[str, pl.DataType]
    categories: Mapping[str, tuple[str, ...]]
    label: str
    join_key: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "features", MappingProxyType(dict(self.features)))
        object.__setattr__(self, "categories", MappingProxyType(dict(self.categories)))
        unknown = [c for c in self.categories if c not in self.features]
        strings = [c for c, t in self.features.items() if t == pl.String]
        uncoded = [c for c in strings if c not in self.categories]
        if unknown or uncoded:
            raise ValueError(
                f"encoding of {self.feature_service!r}: vocabularies for unknown features "
                f"{unknown}; string features without a vocabulary {uncoded}"
            )

    @property
    def names(self) -> list[str]:
        """Model input columns, in the feature service's order (the matrix column order)."""
        return list(self.features)

    @property
    def key_columns(self) -> tuple[str, str, str]:
        return (self.join_key, AS_OF, EVENT_TIMESTAMP)

    def check(self, frame: pl.DataFrame) -> None:
        """Raise ``FeatureListError`` naming missing, unexpected and mistyped feature columns.

        Key and label columns are not features and may or may not be present.
        """
        schema = frame.schema  # built anew on every access: read it once
        present = [c for c in schema if c not in (*self.key_columns, self.label)]
        missing = [c for c in self.features if c not in schema]
        extra = [c for c in present if c not in self.features]
        mistyped = [
            f"{c} is {schema[c]}, expected {t}"
            for c, t in self.features.items()
            if c in schema and schema[c] != t and schema[c] != pl.Null
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
                f"feature columns differ from feature service {self.feature_service!r} "
                f"({len(self.features)} features): " + "; ".join(problems)
            )

    def matrix(self, frame: pl.DataFrame) -> np.ndarray:
        """The ``(rows, features)`` float32 matrix of ``frame`` in ``names`` order.

        Checks the feature columns first (``FeatureListError``). Categoricals map to their
        vocabulary code, unknown or null → NaN; numeric nulls → NaN.
        """
        self.check(frame)
        columns = [self._encoded(name) for name in self.features]
        return frame.select(columns).to_numpy().astype(np.float32, copy=False)

    def _encoded(self, name: str) -> pl.Expr:
        vocabulary = self.categories.get(name)
        if vocabulary is None:
            return pl.col(name).cast(pl.Float32)
        codes = list(range(len(vocabulary)))
        return (
            pl.col(name)
            .replace_strict(list(vocabulary), codes, default=None, return_dtype=pl.Int32)
            .cast(pl.Float32)
        )

    def decode(self, name: str, code: float) -> Any:
        """The category of a code (or the value itself for numeric features; NaN → None)."""
        if np.isnan(code):
            return None
        vocabulary = self.categories.get(name)
        return vocabulary[int(code)] if vocabulary is not None else float(code)

    def spec(self) -> dict[str, Any]:
        """The model's input contract as JSON-ready data (logged next to the model)."""
        return {
            "feature_service": self.feature_service,
            "label": self.label,
            "join_key": self.join_key,
            "features": [
                {
                    "name": name,
                    "type": str(dtype),
                    "encoding": (
                        {"kind": "category_code", "vocabulary": list(self.categories[name])}
                        if name in self.categories
                        else {"kind": "numeric"}
                    ),
                }
                for name, dtype in self.features.items()
            ],
            "missing": "NaN (xgboost missing value): numeric nulls and unknown categories",
        }
