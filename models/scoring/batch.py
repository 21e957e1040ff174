"""Batch scoring: every entity active on a day, scored by one model version, explained.

For as-of day ``D`` the population is every entity with a row for ``D`` in the use case's
population view; the entity timestamp is midnight after ``D``, so Feast's point-in-time join
returns exactly the features the model would have had at the end of ``D`` — through the same
feature service the model was trained on. The feature tables are pinned to their versions at the
start of the run, so every chunk reads the same snapshot and a replay can read it again.

Each chunk of entities is retrieved, predicted (``inplace_predict``), explained with exact
TreeSHAP (``models.explain``) and given reason codes; memory holds one chunk at a time.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np
import polars as pl
import xgboost as xgb
from feast import FeatureStore

from lakehouse.catalog import TIMESTAMP
from lakehouse.commit import CommitInfo
from lakehouse.storage import Lakehouse
from models.encoding import FeatureEncoding
from models.explain import TreePredictor, TreeShapExplainer
from models.lifecycle.registry import CHAMPION, ModelRegistry
from models.scoring.policy import Reason, ScoringPolicy
from models.scoring.reasons import RankedReasons, rank_reasons, reason_columns
from models.scoring.runs import SERVING_ALIAS
from models.scoring.tables import BASE_VALUE, SHAP_PREFIX
from models.usecase.spec import UseCase

COMPILED_MAX_ROWS = 100
"""Up to this many rows, a compiled model predicts with its compiled trees (one row of 200 trees:
0.16 against 1.7 ms through ``inplace_predict``, paced as requests come); at 100 rows both take
about as long, and beyond xgboost's blocked prediction is faster (800 rows: 6.7 against 10 ms
back to back)."""


class ScoringError(ValueError):
    """Scoring cannot start: the message says what is missing or inconsistent."""


@dataclass(frozen=True)
class ScoringModel:
    """One registered model version, loaded for scoring."""

    name: str
    version: str
    alias: str
    booster: xgb.Booster
    feature_service: str
    training_set_version: int
    iteration_range: tuple[int, int] = (0, 0)
    """The boosting rounds the model predicts with (``(0, 0)``: all of them), as registered."""
    trees: TreePredictor | None = field(default=None, compare=False, repr=False)
    """The same prediction compiled for a few rows (``compiled``); None: xgboost's alone."""
    sha256: str = field(init=False)

    def __post_init__(self) -> None:
        raw = bytes(self.booster.save_raw("json"))
        object.__setattr__(self, "sha256", hashlib.sha256(raw).hexdigest())

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        """Scores of encoded rows, with the registered iteration range: xgboost's
        ``inplace_predict``, or the same float32 values from the compiled trees for at most
        ``COMPILED_MAX_ROWS`` rows of a ``compiled`` model."""
        if self.trees is not None and len(matrix) <= COMPILED_MAX_ROWS:
            return self.trees.predict(matrix)
        return self.booster.inplace_predict(matrix, iteration_range=self.iteration_range)

    def compiled(self) -> ScoringModel:
        """This model with its trees compiled for requests of a few rows (``TreePredictor``,
        checked bit-identical to xgboost when built). ``UnsupportedModelError`` when the
        objective or the check says no: keep this model, which predicts with xgboost."""
        trees = TreePredictor(self.booster, iteration_range=self.iteration_range)
        return replace(self, trees=trees)

    def explainer(self) -> TreeShapExplainer:
        """Exact TreeSHAP of exactly the trees ``predict`` uses."""
        return TreeShapExplainer(self.booster, iteration_range=self.iteration_range)

    @property
    def served(self) -> bool:
        """True for the champion's runs (served to apps); other aliases are shadow runs."""
        return self.alias == SERVING_ALIAS


@dataclass(frozen=True)
class ScoringRun:
    """Identity and inputs of one scoring run of one as-of day."""

    scoring_run_id: str
    as_of: date
    dagster_run_id: str
    code_version: str
    source_versions: dict[str, int]
    scored_at: datetime


@dataclass(frozen=True)
class ScoredChunk:
    predictions: pl.DataFrame
    explanations: pl.DataFrame
    inputs: np.ndarray  # the encoded model inputs, rows in the same order


def check_model_features(
    model: ScoringModel, store: FeatureStore, encoding: FeatureEncoding
) -> list[str]:
    """The model's features, checked against its feature service and the encoding contract."""
    expected = encoding.names
    booster_names = list(model.booster.feature_names or [])
    service = store.get_feature_service(model.feature_service)
    served = [
        f.name for projection in service.feature_view_projections for f in projection.features
    ]
    problems = []
    if booster_names != expected:
        problems.append(
            f"model {model.name} v{model.version} features differ from the encoding contract: "
            f"missing {sorted(set(expected) - set(booster_names))}, "
            f"extra {sorted(set(booster_names) - set(expected))}"
        )
    if sorted(served) != sorted(expected):
        problems.append(
            f"feature service {model.feature_service!r} serves {len(served)} features; the model "
            f"needs {len(expected)}: missing {sorted(set(expected) - set(served))}, "
            f"extra {sorted(set(served) - set(expected))}"
        )
    if problems:
        raise ScoringError("; ".join(problems))
    return expected


def pin_feature_versions(lake: Lakehouse, tables: Sequence[str]) -> dict[str, int]:
    """Current versions of the feature tables (read once at run start)."""
    versions = {}
    for name in tables:
        version = lake.version(name)
        if version is None:
            raise ScoringError(f"{name} has never been written: build features before scoring")
        versions[name] = version
    return versions


def entity_timestamp(as_of: date) -> datetime:
    """The instant a day's scores are as of: midnight UTC after the day."""
    return datetime.combine(as_of + timedelta(days=1), time(0), tzinfo=UTC)


def population(
    lake: Lakehouse, use_case: UseCase, as_of: date, versions: Mapping[str, int]
) -> pl.DataFrame:
    """Entities active on ``as_of`` with their entity timestamp, sorted by key."""
    table, key = use_case.features.population_table, use_case.entity.join_key
    version = versions[table]
    entities = (
        lake.scan(table, version=version)
        .filter(pl.col("feature_date") == as_of)
        .select(key)
        .unique()
        .sort(key)
        .collect()
    )
    if entities.is_empty():
        raise ScoringError(
            f"{table} v{version} has no rows for {as_of}: no active {key} that day, or its "
            "features were never built (build them first): nothing to score"
        )
    stamp = pl.lit(entity_timestamp(as_of), dtype=TIMESTAMP).alias("event_timestamp")
    return entities.with_columns(stamp)


def score_chunks(
    model: ScoringModel,
    store: FeatureStore,
    use_case: UseCase,
    entities: pl.DataFrame,
    run: ScoringRun,
    policy: ScoringPolicy,
    *,
    explainer: TreeShapExplainer | None = None,
    on_chunk: Callable[[int, int], None] | None = None,
) -> Iterator[ScoredChunk]:
    """Predictions, explanations and model inputs per chunk of ``entities``, in entity order."""
    explainer = explainer or model.explainer()
    service = store.get_feature_service(model.feature_service)
    for start in range(0, entities.height, policy.chunk_rows):
        chunk = entities.slice(start, policy.chunk_rows)
        job = store.get_historical_features(entity_df=chunk.to_pandas(), features=service)
        retrieved = pl.from_arrow(job.to_arrow())
        assert isinstance(retrieved, pl.DataFrame)
        matrix = use_case.encoding.matrix(retrieved)
        scored, explained = score_matrix(model, explainer, use_case, retrieved, matrix, run, policy)
        yield ScoredChunk(scored, explained, matrix)
        if on_chunk is not None:
            on_chunk(start + chunk.height, entities.height)


def feature_frame(
    encoding: FeatureEncoding,
    entity_ids: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
    event_timestamp: datetime,
) -> pl.DataFrame:
    """Feature rows given as values (an online lookup, a request payload, a replay), typed as
    the encoding declares: the frame that ``encoding.matrix`` and ``score_matrix`` take, as a
    retrieved batch chunk is. A feature absent from a row is null (missing)."""
    schema = {encoding.join_key: pl.String(), "event_timestamp": TIMESTAMP, **encoding.features}
    columns: dict[str, list[Any]] = {
        encoding.join_key: list(entity_ids),
        "event_timestamp": [event_timestamp] * len(rows),
    }
    columns |= {name: [row.get(name) for row in rows] for name in encoding.names}
    # Column lists, not row dicts: this constructor refuses a float for an integer feature
    # where the row constructors would silently truncate it.
    return pl.DataFrame(columns, schema=schema)


@dataclass(frozen=True)
class Scored:
    """One model's scores of encoded rows, explained: the arrays that the batch tables
    (``score_matrix``) and the scoring service's answers are both made of."""

    scores: np.ndarray
    """(rows,) float64 predictions."""
    shap: np.ndarray
    """(rows, features + 1) exact TreeSHAP values, bias last."""
    bands: np.ndarray
    decisions: np.ndarray
    missing: np.ndarray
    """(rows,) int64 count of missing model inputs."""
    reasons: RankedReasons

    def decision_rows(
        self, names: Sequence[str], catalogue: Mapping[str, Reason]
    ) -> list[dict[str, Any]]:
        """Each row's ``DECISION_FIELDS`` as Python values, equal to its table row's; every
        array is made Python values at once, not indexed row by row."""
        columns = zip(
            self.scores.tolist(),
            self.bands.tolist(),
            self.decisions.tolist(),
            self.missing.tolist(),
            self.reasons.rows(names, catalogue),
            strict=True,
        )
        return [
            {
                "score": score,
                "risk_band": str(band),
                "decision": str(decision),
                "missing_feature_count": missing,
                **reasons,
            }
            for score, band, decision, missing, reasons in columns
        ]


def score_rows(
    model: ScoringModel,
    explainer: TreeShapExplainer,
    use_case: UseCase,
    matrix: np.ndarray,
    policy: ScoringPolicy,
    reasons: Mapping[str, Reason] | None = None,
) -> Scored:
    """Predict, explain, rank reasons, band and decide encoded rows (``encoding.matrix``)."""
    scores = model.predict(matrix).astype(np.float64)
    contributions = explainer.shap_values(matrix)
    catalogue = reasons if reasons is not None else use_case.reasons
    names = use_case.encoding.names
    return Scored(
        scores=scores,
        shap=contributions,
        bands=policy.bands_of(scores),
        decisions=policy.decisions_of(scores),
        missing=np.isnan(matrix).sum(axis=1).astype(np.int64),
        reasons=rank_reasons(contributions[:, :-1], matrix, names, catalogue, policy.reasons),
    )


def score_matrix(
    model: ScoringModel,
    explainer: TreeShapExplainer,
    use_case: UseCase,
    rows: pl.DataFrame,
    matrix: np.ndarray,
    run: ScoringRun,
    policy: ScoringPolicy,
    reasons: Mapping[str, Reason] | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Scores, bands, reasons and SHAP of retrieved feature ``rows`` (``matrix`` encoded), as
    the prediction and explanation tables' rows."""
    key, names, tables = use_case.entity.join_key, use_case.encoding.names, use_case.tables
    catalogue = reasons if reasons is not None else use_case.reasons
    scored = score_rows(model, explainer, use_case, matrix, policy, catalogue)
    ids = rows.select(
        (pl.lit(f"{run.scoring_run_id}:") + pl.col(key)).alias("prediction_id"),
        pl.lit(run.scoring_run_id).alias("scoring_run_id"),
        key,
        pl.lit(run.as_of).alias("as_of_date"),
    )
    predictions = pl.concat(
        [
            ids,
            rows.select(pl.col("event_timestamp").cast(TIMESTAMP)),
            pl.DataFrame(
                {
                    "score": scored.scores,
                    "risk_band": pl.Series(scored.bands, dtype=pl.String),
                    "decision": pl.Series(scored.decisions, dtype=pl.String),
                    "missing_feature_count": scored.missing,
                }
            ),
            reason_columns(scored.reasons, names, catalogue),
        ],
        how="horizontal",
    ).with_columns(
        pl.lit(model.name).alias("model_name"),
        pl.lit(model.version).alias("model_version"),
        pl.lit(model.alias).alias("model_alias"),
        pl.lit(model.sha256).alias("model_sha256"),
        pl.lit(model.feature_service).alias("feature_service"),
        pl.lit(json.dumps(run.source_versions, sort_keys=True)).alias("source_versions"),
        pl.lit(model.training_set_version, dtype=pl.Int64).alias("training_set_version"),
        pl.lit(run.dagster_run_id).alias("dagster_run_id"),
        pl.lit(run.as_of.isoformat()).alias("partition"),
        pl.lit(run.code_version).alias("code_version"),
        pl.lit(run.scored_at, dtype=TIMESTAMP).alias("scored_at"),
    )
    contributions = scored.shap
    explanations = pl.concat(
        [
            ids,
            pl.DataFrame(
                {BASE_VALUE: contributions[:, -1]}
                | {f"{SHAP_PREFIX}{name}": contributions[:, i] for i, name in enumerate(names)}
            ),
        ],
        how="horizontal",
    )
    prediction_spec, explanation_spec = (
        use_case.table_spec(t) for t in (tables.scoring.predictions, tables.scoring.explanations)
    )
    return (
        predictions.select(list(prediction_spec.schema)),
        explanations.select(list(explanation_spec.schema)),
    )


def load_model(
    registry: ModelRegistry, *, alias: str = CHAMPION, version: str | None = None
) -> ScoringModel:
    """The model an alias points at (resolved now, once), or a given version."""
    if version is None:
        found = registry.alias(alias)
        if found is None:
            raise ScoringError(
                f"no model version has the alias {alias!r} in model {registry.model_name}: train "
                "and promote a model before scoring"
            )
    else:
        found = registry.version(version)
    tags = found.tags or {}
    if "feature_service" not in tags:
        raise ScoringError(
            f"model {registry.model_name} v{found.version} has no feature_service tag"
        )
    begin, end = (int(x) for x in tags.get("iteration_range", "0,0").split(","))
    return ScoringModel(
        name=registry.model_name,
        version=str(found.version),
        alias=alias if version is None else "",
        booster=registry.load_booster(found.version),
        feature_service=tags["feature_service"],
        training_set_version=int(tags.get("training_set_version", -1)),
        iteration_range=(begin, end),
    )


@dataclass(frozen=True)
class ScoringResult:
    run: ScoringRun
    rows: int
    predictions_version: int
    explanations_version: int
    explainer_backend: str
    sample_scores: np.ndarray  # up to PLOT_SAMPLE rows, for plots
    sample_shap: np.ndarray
    sample_inputs: np.ndarray


PLOT_SAMPLE = 5_000


def score_day(
    lake: Lakehouse,
    store: FeatureStore,
    use_case: UseCase,
    model: ScoringModel,
    run: ScoringRun,
    policy: ScoringPolicy,
    *,
    on_chunk: Callable[[int, int], None] | None = None,
) -> ScoringResult:
    """Score every entity active on ``run.as_of`` and append the audited records.

    Everything that can be checked is checked before anything is written. Explanations,
    then predictions, then the scoring-runs row are committed; the run only becomes the
    current one of its day with that last commit.
    """
    tables = use_case.tables.scoring
    check_model_features(model, store, use_case.encoding)
    entities = population(lake, use_case, run.as_of, run.source_versions)
    started = datetime.now(UTC)
    commit = scoring_commit(use_case, model, run)
    explainer = model.explainer()
    written = write_scores(
        lake, store, use_case, model, run, policy, entities, commit, explainer, on_chunk=on_chunk
    )
    assert written.predictions_version is not None and written.explanations_version is not None
    record = run_record(
        use_case,
        model,
        run,
        policy,
        rows=written.rows,
        predictions_version=written.predictions_version,
        explanations_version=written.explanations_version,
        explainer_backend=explainer.backend,
        started=started,
    )
    lake.append(tables.scoring_runs, record, commit=commit)
    samples = written.samples
    return ScoringResult(
        run,
        written.rows,
        written.predictions_version,
        written.explanations_version,
        explainer.backend,
        np.concatenate([s.predictions["score"].to_numpy() for s in samples])[:PLOT_SAMPLE],
        np.concatenate([s.explanations.select(tables.shap_columns).to_numpy() for s in samples])[
            :PLOT_SAMPLE
        ],
        np.concatenate([s.inputs for s in samples])[:PLOT_SAMPLE],
    )


def scoring_commit(
    use_case: UseCase, model: ScoringModel, run: ScoringRun, **extra: object
) -> CommitInfo:
    """Commit metadata of a scoring run's writes (``extra``: e.g. the entity bucket)."""
    return CommitInfo(
        run_id=run.dagster_run_id,
        asset_key=use_case.tables.scoring.predictions.replace(".", "/"),
        partition=run.as_of.isoformat(),
        extra={"scoring_run_id": run.scoring_run_id, "model_version": model.version, **extra},
    )


@dataclass(frozen=True)
class WrittenScores:
    """What ``write_scores`` committed: rows, the two table versions, a sample for plots."""

    rows: int
    predictions_version: int | None  # None: no entities, nothing committed
    explanations_version: int | None
    samples: list[ScoredChunk]


def write_scores(
    lake: Lakehouse,
    store: FeatureStore,
    use_case: UseCase,
    model: ScoringModel,
    run: ScoringRun,
    policy: ScoringPolicy,
    entities: pl.DataFrame,
    commit: CommitInfo,
    explainer: TreeShapExplainer,
    *,
    sample_rows: int = PLOT_SAMPLE,
    on_chunk: Callable[[int, int], None] | None = None,
) -> WrittenScores:
    """Score ``entities`` chunk by chunk and append explanations, then predictions (one commit
    each, only if every chunk succeeded); keep the first ``sample_rows`` rows for plots."""
    if entities.is_empty():
        return WrittenScores(0, None, None, [])
    tables = use_case.tables.scoring
    samples: list[ScoredChunk] = []
    predictions_table, explanations_table = tables.outputs(model.served)
    with (
        lake.staged_append(predictions_table, commit=commit) as predictions,
        lake.staged_append(explanations_table, commit=commit) as explanations,
    ):
        for chunk in score_chunks(
            model, store, use_case, entities, run, policy, explainer=explainer, on_chunk=on_chunk
        ):
            predictions.write(chunk.predictions)
            explanations.write(chunk.explanations)
            need = sample_rows - sum(len(s.inputs) for s in samples)
            if need > 0:  # keep a slice, not the chunk: memory stays at one chunk
                samples.append(
                    ScoredChunk(
                        chunk.predictions.head(need),
                        chunk.explanations.head(need),
                        chunk.inputs[:need].copy(),
                    )
                )
    assert predictions.result is not None and explanations.result is not None
    return WrittenScores(
        predictions.rows, predictions.result.version, explanations.result.version, samples
    )


def run_record(
    use_case: UseCase,
    model: ScoringModel,
    run: ScoringRun,
    policy: ScoringPolicy,
    *,
    rows: int,
    predictions_version: int,
    explanations_version: int,
    explainer_backend: str,
    started: datetime,
    finished: datetime | None = None,
) -> pl.DataFrame:
    """The scoring-runs row of one run of one day (the versions hold all of its rows)."""
    return pl.DataFrame(
        {
            "scoring_run_id": [run.scoring_run_id],
            "as_of_date": [run.as_of],
            "dagster_run_id": [run.dagster_run_id],
            "partition": [run.as_of.isoformat()],
            "model_name": [model.name],
            "model_version": [model.version],
            "model_alias": [model.alias],
            "feature_service": [model.feature_service],
            "source_versions": [json.dumps(run.source_versions, sort_keys=True)],
            "scoring_policy": [json.dumps(policy.to_json(), sort_keys=True)],
            "predictions_version": [predictions_version],
            "explanations_version": [explanations_version],
            "rows": [rows],
            "explainer_backend": [explainer_backend],
            "iteration_range": [f"{model.iteration_range[0]},{model.iteration_range[1]}"],
            "started_at": [started],
            "finished_at": [finished or datetime.now(UTC)],
            "code_version": [run.code_version],
        },
        schema=use_case.table_spec(use_case.tables.scoring.scoring_runs).polars_schema,
    )
