"""What the online store serves for a use case: each entity's latest *recorded* champion score.

The online ``<uc>_prediction`` view is written from ``current_predictions`` (rows of runs the
``scoring_runs`` table records, the latest run of each day), never from the raw predictions
table: rows of a run that died before its record was committed are never served, and a
re-scored day replaces the superseded run's values. ``compare_online`` checks the store against
that truth and names every entity that differs, so a stray write (or a crash between the online
write and anything else) is found and — with ``write_online`` — repaired.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import polars as pl
from feast import FeatureStore

from lakehouse.storage import Lakehouse
from models.scoring.runs import current_predictions
from models.scoring.tables import ScoringTables

SERVED_FIELDS = (
    "score",
    "risk_band",
    "decision",
    "reason_codes",
    "reason_features",
    "reason_contributions",
    "model_version",
    "scoring_run_id",
)
"""The fields of the ``<uc>_prediction`` view, compared one by one."""

BATCH = 10_000


def view_name(tables: ScoringTables) -> str:
    return f"{tables.use_case}_prediction"


def served_rows(
    lake: Lakehouse, tables: ScoringTables, entities: list[str] | None = None
) -> pl.DataFrame:
    """The latest current prediction of each entity (of ``entities``, or all), one row each."""
    key = tables.join_key
    rows = current_predictions(lake, tables)
    if entities is not None:
        rows = rows.filter(pl.col(key).is_in(entities))
    return (
        rows.select(key, "event_timestamp", "scored_at", *SERVED_FIELDS, "as_of_date")
        .sort("as_of_date", "scored_at")
        .group_by(key)
        .agg(pl.all().last())
        .drop("as_of_date")
        .sort(key)
        .collect()
    )


def scored_entities(lake: Lakehouse, tables: ScoringTables) -> list[str]:
    """Every entity any served-table row names, recorded run or not (what could be online)."""
    if not lake.exists(tables.predictions):
        return []
    key = tables.join_key
    scanned = (
        lake.scan(tables.predictions, unrecorded=True).select(key).unique().sort(key).collect()
    )
    return scanned[key].to_list()


def write_online(store: FeatureStore, tables: ScoringTables, rows: pl.DataFrame) -> int:
    """Write ``rows`` (from ``served_rows``) into the online store; the number written."""
    for batch in _batches(rows):
        store.write_to_online_store(view_name(tables), batch.to_pandas())
    return rows.height


@dataclass(frozen=True)
class OnlineDiff:
    """Entities whose online values differ from the recorded truth."""

    checked: int
    differing: pl.DataFrame
    """One row per (entity, field): ``online`` and ``expected`` as text."""

    @property
    def entities(self) -> list[str]:
        key = self.differing.columns[0]
        return sorted(set(self.differing[key].to_list()))


def compare_online(
    store: FeatureStore, lake: Lakehouse, tables: ScoringTables, entities: list[str] | None = None
) -> OnlineDiff:
    """Compare the online store with ``served_rows`` for ``entities`` (default: every entity
    ever scored, so values of unrecorded runs are found too)."""
    key = tables.join_key
    candidates = scored_entities(lake, tables) if entities is None else entities
    expected = served_rows(lake, tables, candidates)
    by_id = {row[key]: row for row in expected.iter_rows(named=True)}
    problems: list[dict[str, str | None]] = []
    for start in range(0, len(candidates), BATCH):
        ids = candidates[start : start + BATCH]
        online = store.get_online_features(
            features=[f"{view_name(tables)}:{f}" for f in SERVED_FIELDS],
            entity_rows=[{key: i} for i in ids],
        ).to_dict()
        for index, entity in enumerate(ids):
            truth = by_id.get(entity, {})
            for field in SERVED_FIELDS:
                got, want = online[field][index], truth.get(field)
                if _text(got) != _text(want):
                    problems.append(
                        {key: entity, "field": field, "online": _text(got), "expected": _text(want)}
                    )
    schema = {key: pl.String, "field": pl.String, "online": pl.String, "expected": pl.String}
    return OnlineDiff(len(candidates), pl.DataFrame(problems, schema=schema))


def repair_online(
    store: FeatureStore, lake: Lakehouse, tables: ScoringTables, diff: OnlineDiff
) -> int:
    """Rewrite the differing entities with their recorded values; the number written."""
    entities = diff.entities
    if not entities:
        return 0
    key = tables.join_key
    rows = served_rows(lake, tables, entities)
    missing = sorted(set(entities) - set(rows[key].to_list()))
    if missing:
        rows = pl.concat([rows, _blank_rows(rows.schema, key, missing)])
    return write_online(store, tables, rows)


def _blank_rows(schema: pl.Schema, key: str, ids: list[str]) -> pl.DataFrame:
    """Rows without values for entities no recorded run scored: they overwrite a stray value
    (Feast's online stores have no delete of one entity), stamped now so they are the latest."""
    now = datetime.now(UTC)
    stamped = ("event_timestamp", "scored_at")
    return pl.DataFrame({key: ids}, schema={key: schema[key]}).with_columns(
        pl.lit(now if column in stamped else None, dtype=dtype).alias(column)
        for column, dtype in schema.items()
        if column != key
    )


def _batches(rows: pl.DataFrame) -> Iterator[pl.DataFrame]:
    for start in range(0, rows.height, BATCH):
        yield rows.slice(start, BATCH)


def _text(value: object) -> str | None:
    """A comparable rendering (lists and floats as Python repr; missing as None)."""
    if value is None:
        return None
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list | tuple):
        return repr([_text(v) for v in value])
    return str(value)
