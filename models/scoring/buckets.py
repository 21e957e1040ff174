"""Scoring in entity buckets: one day's population split by a stable hash of the entity id, so
buckets score in parallel as independent units (steps on different processes or machines).

* ``entity_bucket``: FNV-1a (32 bit) of the id's UTF-8 bytes, modulo the bucket count: the same
  id lands in the same bucket on every machine, Python version and library version (unlike
  Python's ``hash`` or polars' ``hash``, which are not stable across versions).
* ``score_bucket``: scores the bucket's entities and appends explanations then predictions, one
  commit each, tagged with the bucket. Appends commute, so buckets never conflict on data; the
  commit itself is retried by the Delta writer when another bucket committed first. A bucket
  run again after a failure (``resume``) first looks for its own commits in the table
  history and skips a table it already wrote: nothing is lost or duplicated.
* ``record_bucketed_run``: once every bucket is done, one scoring-runs row per day describes the
  whole run (all buckets): the rows of all buckets, and the table versions that hold them all.

Every row is computed exactly as ``score_day`` computes it (same retrieval, model, explainer
and ids), so a bucketed run replays exactly with ``models.scoring.replay``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
from feast import FeatureStore

from lakehouse.storage import Lakehouse, WriteResult
from models.scoring.batch import (
    ScoringModel,
    ScoringRun,
    population,
    run_record,
    scoring_commit,
    write_scores,
)
from models.scoring.policy import ScoringPolicy
from models.usecase.spec import UseCase

_FNV_OFFSET = np.uint32(2166136261)
_FNV_PRIME = np.uint32(16777619)
HISTORY_LOOKBACK = 1_000
"""Commits of a table searched for a resumed bucket's earlier write (the run's own commits
are recent: a table takes at most buckets × days of them per run)."""


def fnv1a_32(ids: pl.Series) -> np.ndarray:
    """FNV-1a 32-bit hash of each string's UTF-8 bytes (vectorized over byte positions)."""
    if ids.null_count():
        raise ValueError(f"{ids.name}: {ids.null_count()} null ids cannot be bucketed")
    array = pa.chunked_array(ids.cast(pl.String).to_arrow()).combine_chunks()
    array = array.cast(pa.large_string())
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int64)[
        array.offset : array.offset + len(array) + 1
    ]
    data = array.buffers()[2]
    bytes_ = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
    starts, lengths = offsets[:-1], np.diff(offsets)
    hashes = np.full(len(array), _FNV_OFFSET, dtype=np.uint32)
    for position in range(int(lengths.max()) if len(lengths) else 0):
        active = np.flatnonzero(lengths > position)
        mixed = hashes[active] ^ bytes_[starts[active] + position].astype(np.uint32)
        hashes[active] = mixed * _FNV_PRIME  # wraps modulo 2**32, as FNV-1a does
    return hashes


def entity_bucket(ids: pl.Series, buckets: int) -> pl.Series:
    """The bucket (``0 .. buckets-1``) of each id."""
    if buckets < 1:
        raise ValueError(f"buckets must be >= 1, got {buckets}")
    return pl.Series("bucket", fnv1a_32(ids) % np.uint32(buckets), dtype=pl.UInt32)


def bucket_entities(entities: pl.DataFrame, key: str, bucket: int, buckets: int) -> pl.DataFrame:
    """The rows of ``entities`` whose ``key`` falls in ``bucket`` (order kept)."""
    if not 0 <= bucket < buckets:
        raise ValueError(f"bucket {bucket} is outside 0..{buckets - 1}")
    if buckets == 1:
        return entities
    return entities.filter(entity_bucket(entities[key], buckets) == bucket)


@dataclass(frozen=True)
class BucketScores:
    """One bucket of one day, as scored (JSON-able: steps pass it to the run's last step)."""

    as_of: str
    bucket: int
    buckets: int
    rows: int
    predictions_version: int | None
    explanations_version: int | None
    explainer_backend: str
    resumed: bool = False
    sample_scores: list[float] = field(default_factory=list)
    sample_shap: list[list[float]] = field(default_factory=list)
    sample_inputs: list[list[float]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> BucketScores:
        return cls(**raw)


def bucket_label(bucket: int, buckets: int) -> str:
    return f"{bucket}/{buckets}"


def score_bucket(
    lake: Lakehouse,
    store: FeatureStore,
    use_case: UseCase,
    model: ScoringModel,
    run: ScoringRun,
    policy: ScoringPolicy,
    bucket: int,
    buckets: int,
    *,
    resume: bool = False,
    sample_rows: int = 0,
    on_chunk: Callable[[int, int], None] | None = None,
) -> BucketScores:
    """Score one bucket of ``run.as_of``'s population and append its explanations and
    predictions (nothing of the scoring-runs table: ``record_bucketed_run`` writes that)."""
    key = use_case.entity.join_key
    entities = bucket_entities(
        population(lake, use_case, run.as_of, run.source_versions), key, bucket, buckets
    )
    label = bucket_label(bucket, buckets)
    explainer = model.explainer()
    done = _committed(lake, use_case, model, run, label) if resume else {}
    if done:
        return _resumed(use_case, model, run, bucket, buckets, done, explainer.backend)
    commit = scoring_commit(use_case, model, run, bucket=label)
    written = write_scores(
        lake,
        store,
        use_case,
        model,
        run,
        policy,
        entities,
        commit,
        explainer,
        sample_rows=sample_rows,
        on_chunk=on_chunk,
    )
    shap_columns = use_case.tables.scoring.shap_columns
    samples = written.samples
    return BucketScores(
        as_of=run.as_of.isoformat(),
        bucket=bucket,
        buckets=buckets,
        rows=written.rows,
        predictions_version=written.predictions_version,
        explanations_version=written.explanations_version,
        explainer_backend=explainer.backend,
        sample_scores=[x for s in samples for x in s.predictions["score"].to_list()],
        sample_shap=[list(r) for s in samples for r in s.explanations.select(shap_columns).rows()],
        sample_inputs=[r for s in samples for r in s.inputs.tolist()],
    )


def _committed(
    lake: Lakehouse, use_case: UseCase, model: ScoringModel, run: ScoringRun, label: str
) -> dict[str, dict[str, Any]]:
    """This bucket's earlier commits of this run, by table (a table missing was not written)."""
    found = {}
    for table in use_case.tables.scoring.outputs(model.served):
        if not lake.exists(table):
            continue
        for entry in lake.history(table, limit=HISTORY_LOOKBACK):
            if (
                entry.get("scorehouse.scoring_run_id") == run.scoring_run_id
                and entry.get("scorehouse.bucket") == label
            ):
                found[table] = entry
                break
    return found


def _resumed(
    use_case: UseCase,
    model: ScoringModel,
    run: ScoringRun,
    bucket: int,
    buckets: int,
    done: Mapping[str, Mapping[str, Any]],
    backend: str,
) -> BucketScores:
    """A bucket whose earlier attempt committed: the predictions are what counts. If only the
    explanations were committed the attempt failed in between, which the caller must redo."""
    predictions_table, explanations_table = use_case.tables.scoring.outputs(model.served)
    if predictions_table not in done or explanations_table not in done:
        missing = predictions_table if predictions_table not in done else explanations_table
        raise BucketIncompleteError(
            f"{run.scoring_run_id} bucket {bucket_label(bucket, buckets)}: an earlier attempt "
            f"committed {sorted(done)} but not {missing}; the run cannot be completed safely "
            "(run it again: a new run supersedes this one)"
        )
    predictions, explanations = done[predictions_table], done[explanations_table]
    return BucketScores(
        as_of=run.as_of.isoformat(),
        bucket=bucket,
        buckets=buckets,
        rows=int(predictions.get("scorehouse.rows", 0)),
        predictions_version=int(predictions["version"]),
        explanations_version=int(explanations["version"]),
        explainer_backend=backend,
        resumed=True,
    )


class BucketIncompleteError(RuntimeError):
    """A bucket's earlier attempt wrote one output table but not the other."""


def record_bucketed_run(
    lake: Lakehouse,
    use_case: UseCase,
    model: ScoringModel,
    runs: Sequence[ScoringRun],
    policy: ScoringPolicy,
    results: Sequence[BucketScores],
    started: datetime,
) -> WriteResult:
    """One scoring-runs row per day for all of its buckets, in one commit.

    Every bucket of every day must be present (``buckets`` of them, each once); the row's
    versions are the highest of its buckets' commits: at that version of each table every
    prediction of the run is visible.
    """
    tables = use_case.tables.scoring
    records = []
    for run in runs:
        day = [r for r in results if r.as_of == run.as_of.isoformat()]
        expected = {r.buckets for r in day}
        seen = sorted(r.bucket for r in day)
        if len(expected) != 1 or seen != list(range(expected.pop())):
            raise ValueError(
                f"{run.scoring_run_id}: buckets {seen} of {sorted({r.buckets for r in day})} "
                "reported; every bucket of the day must be scored exactly once"
            )
        written = [r for r in day if r.predictions_version is not None]
        if not written:
            raise ValueError(f"{run.scoring_run_id}: no bucket wrote any prediction")
        backends = {r.explainer_backend for r in day}
        records.append(
            run_record(
                use_case,
                model,
                run,
                policy,
                rows=sum(r.rows for r in day),
                predictions_version=max(int(r.predictions_version or 0) for r in written),
                explanations_version=max(int(r.explanations_version or 0) for r in written),
                explainer_backend=",".join(sorted(backends)),
                started=started,
            )
        )
    commit = scoring_commit(use_case, model, runs[0], buckets=len(results))
    return lake.append(tables.scoring_runs, pl.concat(records), commit=commit)
