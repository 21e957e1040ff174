"""The protected attributes of scored entities, as known at the end of the scored day.

They are read from the silver table the spec's ``fairness.table`` names (never from a feature
table: they are never features). Point in time: only rows whose feed timestamp is before the
run's entity timestamp (midnight after the as-of day) count, and the latest of those per key
wins. When the table is keyed by something else than the entity (an application, not a loan),
``fairness.via`` names the silver table that links the two; that link does not change over
time (a loan belongs to one application), so it is read as it is now.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from lakehouse.storage import Lakehouse
from models.scoring.batch import entity_timestamp
from models.usecase.spec import UseCase


def protected_frame(
    lake: Lakehouse, use_case: UseCase, entities: pl.Series, as_of: date
) -> pl.DataFrame:
    """``join_key`` + each protected attribute for ``entities`` (null where unknown then)."""
    spec = use_case.fairness
    if spec is None:
        raise ValueError(f"use case {use_case.name!r} declares no fairness section")
    key, attributes = use_case.entity.join_key, list(use_case.protected_attributes)
    flows = use_case.source.tables.flows
    flow = flows[f"silver.{spec.table}"]
    wanted = pl.DataFrame({key: entities.unique()}).lazy()
    link = flow.silver.primary_key[0] if spec.via else key
    rows = lake.scan(flow.silver.name) if lake.exists(flow.silver.name) else None
    if rows is None:
        return wanted.with_columns(pl.lit(None, pl.String).alias(a) for a in attributes).collect()
    stamp = flow.feed.timestamp_column
    if stamp is not None:
        rows = rows.filter(pl.col(stamp) < entity_timestamp(as_of)).sort(stamp)
    known = rows.group_by(link).agg(pl.col(a).last() for a in attributes)
    if spec.via is not None:
        via = lake.scan(f"silver.{spec.via}").select(key, link).unique()
        wanted = wanted.join(via, on=key, how="left")
    joined = wanted.join(known, on=link, how="left")
    return joined.select(key, *(pl.col(a).cast(pl.String) for a in attributes)).collect()
