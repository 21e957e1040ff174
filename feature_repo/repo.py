"""Feast definitions of every use case, generated from its spec (``models/usecase``).

For each use case: its entity, one feature view per feature table (``features.<view>``, TTL
from the spec), the feature service its model trains and scores with, and
``<use case>_prediction``, the latest score, band, decision and reasons of each entity (from
its predictions table) for apps. Feast's CLI collects objects from this module's globals.
"""

from __future__ import annotations

from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field
from feast.types import Array, Float64, Int64, PrimitiveFeastType, String, UnixTimestamp
from feast.value_type import ValueType

from lakehouse.feast_delta import DeltaSource
from models.usecase import UseCase, load_use_cases

FEAST_TYPES: dict[str, PrimitiveFeastType] = {
    "Float64": Float64,
    "Int64": Int64,
    "String": String,
}
PREDICTION_TTL = timedelta(days=7)


def entity(use_case: UseCase) -> Entity:
    return Entity(
        name=use_case.entity.name,
        join_keys=[use_case.entity.join_key],
        value_type=ValueType.STRING,
        description=use_case.entity.description,
    )


def feature_views(use_case: UseCase, of: Entity) -> list[FeatureView]:
    """One view per feature table, typed from the table's columns."""
    return [
        FeatureView(
            name=view.name,
            entities=[of],
            ttl=timedelta(days=use_case.features.ttl_days),
            schema=[Field(name=c, dtype=FEAST_TYPES[str(t)]) for c, t in view.columns.items()],
            source=DeltaSource(
                name=f"{view.name}_source",
                path=view.table.replace(".", "/", 1),
                timestamp_field="event_timestamp",
                created_timestamp_column="created_timestamp",
            ),
            online=True,
            description=view.description,
        )
        for view in use_case.features.views
    ]


def feature_service(use_case: UseCase, views: list[FeatureView]) -> FeatureService:
    """The model's features: every view, projected on the service's features."""
    wanted = set(use_case.features.service_features)
    projections = []
    for view in views:
        names = [f.name for f in view.features if f.name in wanted]
        if names:
            projections.append(view[names] if len(names) < len(view.features) else view)
    return FeatureService(
        name=use_case.features.service,
        features=projections,
        description=f"Every feature of the {use_case.name} model.",
    )


def prediction_view(use_case: UseCase, of: Entity) -> FeatureView:
    """The latest score and reasons per entity. A re-scored day has a newer ``scored_at``,
    which wins the tie on ``event_timestamp``."""
    table = use_case.tables.scoring.predictions
    return FeatureView(
        name=f"{use_case.name}_prediction",
        entities=[of],
        ttl=PREDICTION_TTL,
        schema=[
            Field(name="score", dtype=Float64),
            Field(name="risk_band", dtype=String),
            Field(name="decision", dtype=String),
            Field(name="reason_codes", dtype=Array(String)),
            Field(name="reason_features", dtype=Array(String)),
            Field(name="reason_contributions", dtype=Array(Float64)),
            Field(name="model_version", dtype=String),
            Field(name="scoring_run_id", dtype=String),
            Field(name="scored_at", dtype=UnixTimestamp),
        ],
        source=DeltaSource(
            name=f"{use_case.name}_prediction_source",
            path=table.replace(".", "/", 1),
            timestamp_field="event_timestamp",
            created_timestamp_column="scored_at",
        ),
        online=True,
        description=f"Latest {use_case.name} score, risk band, decision and reasons.",
    )


def feast_objects() -> dict[str, object]:
    """Every Feast object of every use case in effect, by a unique global name."""
    objects: dict[str, object] = {}
    for use_case in load_use_cases().values():
        of = objects.setdefault(f"entity_{use_case.entity.name}", entity(use_case))
        assert isinstance(of, Entity)
        views = feature_views(use_case, of)
        objects |= {f"view_{view.name}": view for view in views}
        objects[f"service_{use_case.features.service}"] = feature_service(use_case, views)
        objects[f"view_{use_case.name}_prediction"] = prediction_view(use_case, of)
    return objects


globals().update(feast_objects())
