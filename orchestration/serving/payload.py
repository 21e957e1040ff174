"""Scoring requests: their JSON shape, and feature payloads checked against the model's input
contract (``use_case.encoding``) before anything is scored.

One entity::

    {"entity_id": "C0000042"}                          features from the online store
    {"entity_id": "C0000042", "features": {...}}       every feature of the contract, given

A batch (each item as above)::

    {"entities": [{"entity_id": "C1"}, {"entity_id": "C2", "features": {...}}]}

Optional: ``"include_shap": true`` adds each item's full SHAP vector to the response.

A feature payload must name every feature of the contract and nothing else. Integers take JSON
integers; floats take numbers (NaN only where the feature may be missing, ±inf never);
categories take one of their vocabulary's strings; booleans take ``true``/``false``; ``null``
(missing) only where the spec declares the feature nullable. Every violation is a 422 naming
the field, e.g. ``entities[3].features.mrr``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from models.usecase import UseCase
from orchestration.serving.errors import invalid

MAX_ENTITY_ID = 256
_INT64 = (-(2**63), 2**63 - 1)
_FLOAT32_MAX = float(np.finfo(np.float32).max)  # the model reads float32: larger is infinite
_TOP_LEVEL = frozenset({"entity_id", "features", "entities", "include_shap"})
_ITEM = frozenset({"entity_id", "features"})


@dataclass(frozen=True)
class Item:
    """One entity to score: its id, and its features when the request gave them."""

    entity_id: str
    features: dict[str, Any] | None


@dataclass(frozen=True)
class ScoreRequest:
    items: tuple[Item, ...]
    single: bool
    include_shap: bool = False


class Contract:
    """What a use case's model takes: feature names, types, vocabularies, nullability."""

    def __init__(self, use_case: UseCase) -> None:
        encoding = use_case.encoding
        self.names = tuple(encoding.names)
        self.types: dict[str, pl.DataType] = dict(encoding.features)
        self.categories = {k: frozenset(v) for k, v in encoding.categories.items()}
        self.vocabularies = dict(encoding.categories)
        self.nullable = frozenset(use_case.quality.nullable)

    def describe(self) -> list[dict[str, Any]]:
        """The contract as JSON-ready data (``GET /v1/{use_case}``)."""
        return [
            {
                "name": name,
                "type": _type_name(self.types[name], name in self.categories),
                "nullable": name in self.nullable,
                **(
                    {"vocabulary": list(self.vocabularies[name])} if name in self.categories else {}
                ),
            }
            for name in self.names
        ]


def _type_name(dtype: pl.DataType, categorical: bool) -> str:
    if categorical:
        return "category"
    if dtype.is_integer():
        return "integer"
    if dtype.is_float():
        return "number"
    if dtype == pl.Boolean:
        return "boolean"
    return "string"


def parse(body: bytes, contract: Contract, max_batch: int) -> ScoreRequest:
    """The request in ``body``, or a 422 ``ServiceError`` naming the offending field."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise invalid("body", "not valid JSON") from None
    if not isinstance(payload, dict):
        raise invalid("body", "expected a JSON object")
    unknown = sorted(set(payload) - _TOP_LEVEL)
    if unknown:
        raise invalid(unknown[0], f"unknown fields {unknown} (allowed: {sorted(_TOP_LEVEL)})")
    include_shap = payload.get("include_shap", False)
    if not isinstance(include_shap, bool):
        raise invalid("include_shap", "expected true or false")
    if "entities" in payload:
        if "entity_id" in payload or "features" in payload:
            raise invalid("entities", "give either entities or entity_id (with features), not both")
        entities = payload["entities"]
        if not isinstance(entities, list) or not entities:
            raise invalid("entities", "expected a non-empty list of entities")
        if len(entities) > max_batch:
            raise invalid("entities", f"{len(entities)} entities; at most {max_batch} per request")
        items = tuple(_item(e, contract, f"entities[{i}]") for i, e in enumerate(entities))
        return ScoreRequest(items, single=False, include_shap=include_shap)
    if "entity_id" not in payload:
        raise invalid("entity_id", "missing: give entity_id (and features) or entities")
    item = {k: v for k, v in payload.items() if k != "include_shap"}
    return ScoreRequest((_item(item, contract, ""),), single=True, include_shap=include_shap)


def _item(raw: Any, contract: Contract, where: str) -> Item:
    prefix = f"{where}." if where else ""
    if not isinstance(raw, dict):
        raise invalid(where or "body", "expected an object with entity_id (and features)")
    unknown = sorted(set(raw) - _ITEM)
    if unknown:
        raise invalid(
            f"{prefix}{unknown[0]}", f"unknown fields {unknown} (allowed: {sorted(_ITEM)})"
        )
    entity_id = raw.get("entity_id")
    if not isinstance(entity_id, str) or not entity_id or len(entity_id) > MAX_ENTITY_ID:
        raise invalid(f"{prefix}entity_id", f"expected a string of 1 to {MAX_ENTITY_ID} characters")
    if "features" not in raw:
        return Item(entity_id, None)
    features = raw["features"]
    if not isinstance(features, dict):
        raise invalid(f"{prefix}features", "expected an object of feature values")
    return Item(entity_id, check_features(features, contract, f"{prefix}features"))


def check_features(features: Mapping[str, Any], contract: Contract, where: str) -> dict[str, Any]:
    """The payload's values in contract order, each checked (see the module docstring)."""
    missing = [n for n in contract.names if n not in features]
    unknown = sorted(set(features) - set(contract.names))
    if missing:
        raise invalid(f"{where}.{missing[0]}", f"missing features {missing}")
    if unknown:
        raise invalid(f"{where}.{unknown[0]}", f"unknown features {unknown}")
    return {
        name: _value(name, features[name], contract, f"{where}.{name}") for name in contract.names
    }


def _value(name: str, value: Any, contract: Contract, field: str) -> Any:
    dtype = contract.types[name]
    if value is None:
        if name not in contract.nullable:
            raise invalid(field, "null is not allowed: this feature is never missing")
        return None
    if name in contract.categories:
        if not isinstance(value, str):
            raise invalid(field, f"expected a category (string), got {_kind(value)}")
        if value not in contract.categories[name]:
            raise invalid(
                field, f"unknown category {value!r} (one of {list(contract.vocabularies[name])})"
            )
        return value
    if dtype == pl.Boolean:
        if not isinstance(value, bool):
            raise invalid(field, f"expected true or false, got {_kind(value)}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid(field, f"expected a number, got {_kind(value)}")
    if dtype.is_integer():
        if not isinstance(value, int):
            raise invalid(field, f"expected an integer, got {value!r}")
        if not _INT64[0] <= value <= _INT64[1]:
            raise invalid(field, "integer out of the 64-bit range")
        return value
    if dtype.is_float():
        number = float(value) if abs(value) <= _FLOAT32_MAX or math.isnan(value) else math.inf
        if math.isinf(number):
            raise invalid(field, f"infinite or too large (beyond ±{_FLOAT32_MAX:.4g}): not allowed")
        if math.isnan(number) and name not in contract.nullable:
            raise invalid(field, "NaN is not allowed: this feature is never missing")
        return number
    raise invalid(field, f"feature type {dtype} cannot be given in a payload")


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
