"""Training sets: matured labels as the entity frame, features through a Feast feature service.

The point-in-time join is Feast's ``get_historical_features`` on our Delta offline store, so
training reads features exactly as scoring will (no training/serving skew). Every row of the
entity frame comes back, with nulls where a view had no row inside its TTL. The Delta versions
the retrieval read are returned, to be recorded in the commit metadata of the training set.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl
from feast import FeatureStore

from lakehouse.catalog import TableSpec
from lakehouse.feast_delta import DeltaRetrievalMetadata
from lakehouse.features.labels import AS_OF, LabelDefinition
from lakehouse.storage import Lakehouse


@dataclass(frozen=True)
class TrainingSet:
    frame: pl.DataFrame
    feature_service: str
    source_versions: dict[str, int]
    labels_version: int


def table_name(lake: Lakehouse, uri: str) -> str:
    """``layer.name`` of a table URI under the lakehouse root (the URI itself otherwise)."""
    root = lake.uri.rstrip("/") + "/"
    relative = uri.removeprefix("file://").rstrip("/")
    if relative.startswith(root):
        return relative[len(root) :].replace("/", ".", 1)
    return uri


def build_training_set(
    lake: Lakehouse,
    store: FeatureStore,
    *,
    labels: LabelDefinition,
    spec: TableSpec,
    feature_service: str,
    first_as_of: date,
    every_days: int = 7,
    matured_by: date | None = None,
    window_days: int | None = None,
) -> TrainingSet:
    """Labels with as-of ≥ ``first_as_of`` every ``every_days`` days, joined to the service,
    in the columns and types of ``spec`` (the training-set table). ``matured_by``: only the
    labels that had matured by the end of that day (the daily partition ``P`` writes the labels
    of as-of ``P − (maturity_days − 1)``, ``lakehouse.features.labels``), so a retrain for a
    given day learns only from outcomes known on it, whatever was ingested since.
    ``window_days``: only the as-of dates within that many days of the newest kept one (a
    recent window; the other rules first)."""
    labels_version = lake.version(labels.table)
    if labels_version is None:
        raise FileNotFoundError(f"{labels.table} has never been written: materialize labels first")
    keep = (pl.col(AS_OF) >= first_as_of) & (
        ((pl.col(AS_OF) - pl.lit(first_as_of)).dt.total_days() % every_days) == 0
    )
    if matured_by is not None:
        keep &= pl.col(AS_OF) <= matured_by - timedelta(days=labels.maturity_days - 1)
    rows = lake.scan(labels.table, version=labels_version).filter(keep)
    if window_days is not None:
        if window_days < 1:
            raise ValueError(f"window_days must be >= 1, got {window_days}")
        newest = rows.select(pl.col(AS_OF).max()).collect().item()
        if newest is not None:
            rows = rows.filter(pl.col(AS_OF) > newest - timedelta(days=window_days))
    entities = rows.select(labels.join_key, AS_OF, "event_timestamp", labels.column).collect()
    if entities.is_empty():
        bound = f" matured by {matured_by}" if matured_by is not None else ""
        raise ValueError(
            f"{labels.table} v{labels_version} has no matured labels with as-of ≥ {first_as_of}"
            + bound
        )
    job = store.get_historical_features(
        entity_df=entities.to_pandas(), features=store.get_feature_service(feature_service)
    )
    result = pl.from_arrow(job.to_arrow())
    assert isinstance(result, pl.DataFrame)
    metadata = job.metadata
    versions = metadata.source_versions if isinstance(metadata, DeltaRetrievalMetadata) else {}
    frame = result.select([pl.col(c).cast(t) for c, t in spec.schema.items()]).sort(
        AS_OF, labels.join_key
    )
    return TrainingSet(
        frame=frame,
        feature_service=feature_service,
        source_versions={table_name(lake, uri): v for uri, v in sorted(versions.items())},
        labels_version=labels_version,
    )


def default_first_as_of(start: date, history_days: int = 30) -> date:
    """First as-of date with enough feature history behind it for the windows to mean much."""
    return start + timedelta(days=history_days)
