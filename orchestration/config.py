"""Dagster run configuration derived from the model-layer dataclasses it mirrors.

``config_class(name, instance)`` makes a ``Config`` subclass with exactly the fields and types
of ``instance``'s dataclass, defaulting to ``instance``'s values (a use case's spec), nested
dataclasses becoming nested ``Config`` classes; ``to_dataclass`` turns the run's config back
into the dataclass. The launchpad shows every hyper-parameter and threshold, and there is no
second copy of any of them to keep in sync.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from dagster import Config

T = TypeVar("T")


def _field_type(hint: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin in (Mapping, dict) or (origin is not None and origin.__name__ == "Mapping"):
        key, value = typing.get_args(hint)
        return dict[key, value]  # type: ignore[valid-type]
    if origin is tuple:
        (item, *_) = typing.get_args(hint)
        return list[item]  # type: ignore[valid-type]
    return hint


def config_class(
    name: str, instance: object, *, extra: Mapping[str, Any] | None = None
) -> type[Config]:
    """A ``Config`` class mirroring ``instance``'s dataclass, defaults = its values.

    ``extra`` adds fields (name → default) that only the asset needs.
    """
    cls = type(instance)
    hints = typing.get_type_hints(cls)
    annotations: dict[str, Any] = {}
    namespace: dict[str, Any] = {"__module__": __name__, "__doc__": f"{cls.__name__} ({name})."}
    for f in dataclasses.fields(instance):  # type: ignore[arg-type]
        value = getattr(instance, f.name)
        if dataclasses.is_dataclass(value):
            nested = config_class(f"{name}_{f.name}", value)
            annotations[f.name] = nested
            namespace[f.name] = nested()
            continue
        annotations[f.name] = _field_type(hints[f.name])
        if isinstance(value, Mapping):
            value = dict(value)
        elif isinstance(value, tuple):
            value = list(value)
        namespace[f.name] = value
    for key, default in (extra or {}).items():
        annotations[key] = type(default)
        namespace[key] = default
    namespace["__annotations__"] = annotations
    return type(name, (Config,), namespace)


def to_dataclass(config: Config, cls: type[T], *, drop: tuple[str, ...] = ()) -> T:
    """The dataclass ``cls`` from a run's config (nested configs included)."""
    values = config.model_dump()
    return _build(cls, {k: v for k, v in values.items() if k not in drop})


def _build(cls: type[T], values: Mapping[str, Any]) -> T:
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name not in values:
            continue
        value, hint = values[f.name], hints[f.name]
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            value = _build(hint, value)
        elif typing.get_origin(hint) is tuple and isinstance(value, list):
            value = tuple(value)
        kwargs[f.name] = value
    return cls(**kwargs)
