"""Dagster run configuration of the training assets, derived from the model-layer dataclasses.

``TrainingConfig`` has exactly the fields (types and defaults) of ``models.training.
TrainingParams`` and ``PromotionConfig`` those of ``models.promotion.PromotionPolicy``, so the
launchpad shows every hyper-parameter and threshold without a second copy to keep in sync.
"""

import dataclasses
import typing
from typing import Any

from dagster import Config

from models.promotion import PromotionPolicy
from models.training import TrainingParams


def _config_class(name: str, source: type, doc: str) -> type[Config]:
    """A ``Config`` subclass with ``source``'s dataclass fields, types and defaults."""
    hints = typing.get_type_hints(source)
    fields = dataclasses.fields(source)
    namespace: dict[str, Any] = {
        "__annotations__": {f.name: hints[f.name] for f in fields},
        "__doc__": doc,
        "__module__": __name__,
        **{f.name: f.default for f in fields},
    }
    return type(name, (Config,), namespace)


TrainingConfig = _config_class(
    "TrainingConfig",
    TrainingParams,
    "Hyper-parameters, split sizes and minimum rows of the churn model (see TrainingParams).",
)
PromotionConfig = _config_class(
    "PromotionConfig",
    PromotionPolicy,
    "Champion/challenger thresholds (see PromotionPolicy).",
)


def training_params(config: Config) -> TrainingParams:
    return TrainingParams(**config.model_dump())


def promotion_policy(config: Config) -> PromotionPolicy:
    return PromotionPolicy(**config.model_dump())
