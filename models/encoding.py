"""Feature frame → xgboost feature matrix, with the feature contract of a use case's service.

Categorical strings become stable integer codes (their index in the declared vocabulary), so a
code means the same category in every model and every scoring run; a value outside the
vocabulary (or null) becomes NaN, which xgboost treats as missing. Numeric nulls stay NaN for the
same reason. Codes are plain numeric features, not xgboost categorical splits: the project's
TreeSHAP explainer (``models.explain``) refuses categorical splits.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
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
    _codes: Mapping[str, Mapping[str, int]] = field(init=False, repr=False, compare=False)
    _expressions: tuple[pl.Expr, ...] = field(init=False, repr=False, compare=False)

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
        # Built once: a small request would otherwise spend more on building them than scoring.
        codes = {
            name: {v: i for i, v in enumerate(vocab)} for name, vocab in self.categories.items()
        }
        object.__setattr__(self, "_codes", MappingProxyType(codes))
        object.__setattr__(self, "_expressions", tuple(map(self._encoded, self.features)))

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
        return frame.select(self._expressions).to_numpy().astype(np.float32, copy=False)

    def encode_rows(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """The matrix ``matrix`` gives for the frame of these rows (values as Python objects, an
        absent feature null), bit for bit, without building a frame: for small requests, where
        building one costs more than scoring it. C-ordered float32 ``(rows, features)``.

        Raises ``FeatureListError`` for a value of the wrong type (as the frame would: a float
        for an integer feature, a number for a category), naming the feature and the row.
        """
        out = np.empty((len(rows), len(self.features)), dtype=np.float32)
        for j, (name, dtype) in enumerate(self.features.items()):
            values = [row.get(name) for row in rows]
            try:
                out[:, j] = self._column(name, dtype, values)
            except (TypeError, ValueError, OverflowError) as exc:
                raise FeatureListError(
                    f"feature {name!r} ({dtype}) of feature service {self.feature_service!r}: {exc}"
                ) from None
        return out

    def _column(self, name: str, dtype: pl.DataType, values: list[Any]) -> np.ndarray:
        codes = self._codes.get(name)
        if codes is not None:
            _check_types(values, (str,), "a string")
            return np.array([codes.get(v, np.nan) for v in values], dtype=np.float32)
        if dtype.is_float():
            _check_types(values, (int, float), "a number")
            floats = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
            return floats.astype(np.float32)
        if dtype.is_integer() or dtype == pl.Boolean:
            _check_types(values, (bool,) if dtype == pl.Boolean else (int,), str(dtype))
            # int64 → float32 in one rounding, as polars casts (never through float64)
            ints = np.array([0 if v is None else v for v in values], dtype=np.int64)
            column = ints.astype(np.float32)
            column[[i for i, v in enumerate(values) if v is None]] = np.nan
            return column
        # dates, timestamps: the frame's own cast, on one small series
        return pl.Series(name, values, dtype=dtype).cast(pl.Float32).to_numpy()

    def _encoded(self, name: str) -> pl.Expr:  # one feature's expression in ``matrix``
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
        if math.isnan(code):  # np.isnan takes a microsecond on a Python float
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


def _check_types(values: list[Any], kinds: tuple[type, ...], expected: str) -> None:
    """Raise ``TypeError`` at the first value that is neither None nor of ``kinds`` (a bool is
    not a number here, although Python says it is an int)."""
    exact = {type(None), *kinds}
    if all(type(v) in exact for v in values):
        return  # the common case, without two isinstance calls a value
    number = bool not in kinds
    for i, value in enumerate(values):
        if value is not None and (
            not isinstance(value, kinds) or (number and isinstance(value, bool))
        ):
            raise TypeError(f"row {i}: expected {expected}, got {type(value).__name__} {value!r}")
