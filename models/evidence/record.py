"""Evidence rows of one recorded scoring run (the run's record in ``ml.<uc>_scoring_runs``).

Both computations read only what the run recorded — its predictions and SHAP rows, the
feature-table versions it pinned, its model version — so they can be recomputed at any time:

* ``explanation_agreement``: LIME on a seeded sample of the run's rows, against their
  recorded SHAP values (``models.evidence.lime``);
* ``fairness_evidence``: the run's outcomes per protected group, with the matured labels where
  they exist (``models.evidence.fairness``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import polars as pl

from lakehouse.storage import Lakehouse
from models.evidence.fairness import OUTCOME, FairnessRule, group_fairness
from models.evidence.lime import Agreement, LimeExplainer, LimeSettings, agreement
from models.evidence.protected import protected_frame
from models.lifecycle.registry import ModelRegistry
from models.monitoring.inputs import day_features, matured_labels, pinned_versions
from models.monitoring.performance import label_day
from models.scoring.batch import load_model
from models.scoring.runs import SERVING_ALIAS
from models.usecase.spec import UseCase

Run = Mapping[str, Any]


class EvidenceError(ValueError):
    """Evidence cannot be computed for a run: the message names the run and what is missing."""


def _run_columns(run: Run) -> dict[str, Any]:
    return {
        "scoring_run_id": run["scoring_run_id"],
        "as_of_date": run["as_of_date"],
        "model_name": run["model_name"],
        "model_version": str(run["model_version"]),
        "model_alias": run["model_alias"],
    }


def _recorded(lake: Lakehouse, table: str, run: Run, columns: list[str]) -> pl.DataFrame:
    frame = (
        lake.scan(table)
        .filter(
            (pl.col("as_of_date") == run["as_of_date"])
            & (pl.col("scoring_run_id") == run["scoring_run_id"])
        )
        .select(columns)
        .collect()
    )
    if frame.is_empty():
        raise EvidenceError(f"{table} has no rows of scoring run {run['scoring_run_id']!r}")
    return frame


def run_predictions(lake: Lakehouse, use_case: UseCase, run: Run) -> pl.DataFrame:
    """The run's recorded predictions: entity, score, band, decision (sorted by entity)."""
    predictions, _ = use_case.tables.scoring.outputs(run["model_alias"] == SERVING_ALIAS)
    key = use_case.entity.join_key
    columns = [key, "score", "risk_band", "decision"]
    return _recorded(lake, predictions, run, columns).sort(key)


@dataclass(frozen=True)
class AgreementEvidence:
    summary: pl.DataFrame
    """One row of ``monitoring.<uc>_explanation_agreement`` (without the run stamp)."""
    rows: pl.DataFrame
    """The sampled rows' LIME weights (``monitoring.<uc>_lime_explanations``)."""
    shap: np.ndarray
    lime: np.ndarray
    per_row: Agreement


def settings_of(use_case: UseCase) -> LimeSettings:
    spec = use_case.explanations
    if spec is None:
        raise EvidenceError(f"use case {use_case.name!r} declares no explanations section")
    return LimeSettings(num_samples=spec.num_samples, seed=spec.seed)


def sample_ids(candidates: pl.Series, size: int, seed: int) -> list[str]:
    """A seeded sample of ``size`` entity ids (all when fewer), in id order."""
    ordered = candidates.sort()
    if ordered.len() <= size:
        return ordered.to_list()
    picked = np.random.default_rng(seed).choice(ordered.len(), size, replace=False)
    return ordered.gather(np.sort(picked)).to_list()


def explanation_agreement(
    lake: Lakehouse, registry: ModelRegistry, use_case: UseCase, run: Run
) -> AgreementEvidence:
    """LIME vs the recorded SHAP on a seeded sample of the run (see the module docstring)."""
    spec = use_case.explanations
    settings = settings_of(use_case)
    assert spec is not None
    key, encoding = use_case.entity.join_key, use_case.encoding
    tables = use_case.tables
    scored = run_predictions(lake, use_case, run)
    features = day_features(lake, use_case, run["as_of_date"], pinned_versions(run))
    rows = scored.join(features, on=key, how="left")
    matrix = encoding.matrix(rows.select(key, *encoding.names))
    complete = ~np.isnan(matrix).any(axis=1)
    ids = sample_ids(rows.filter(pl.Series(complete))[key], spec.sample_size, spec.seed)
    if not ids:
        raise EvidenceError(
            f"scoring run {run['scoring_run_id']!r}: every row has a missing input; LIME "
            "cannot perturb missing values"
        )
    position = {entity: i for i, entity in enumerate(rows[key].to_list())}
    index = np.array([position[e] for e in ids])
    _, explanations = tables.scoring.outputs(run["model_alias"] == SERVING_ALIAS)
    shap = (
        _recorded(lake, explanations, run, [key, *tables.scoring.shap_columns])
        .join(pl.DataFrame({key: ids}), on=key, how="semi")
        .sort(key)
        .select(tables.scoring.shap_columns)
        .to_numpy()
    )
    model = load_model(registry, version=str(run["model_version"]))
    training = lake.read(tables.training_set, version=model.training_set_version)
    explainer = LimeExplainer(
        model.predict, encoding.matrix(training), encoding.names, encoding.categories, settings
    )
    found = explainer.explain(matrix[index], ids)
    per_row = agreement(shap, found.weights, spec.top_k)
    return AgreementEvidence(
        summary=pl.DataFrame(
            [
                {
                    **_run_columns(run),
                    "run_rows": scored.height,
                    "sample_size": spec.sample_size,
                    "explained": len(ids),
                    "skipped_missing": int((~complete).sum()),
                    "top_k": spec.top_k,
                    **per_row.summary(),
                    "min_rank_correlation": spec.min_rank_correlation,
                    "alert": bool(per_row.summary()["mean_spearman"] < spec.min_rank_correlation),
                    "seed": spec.seed,
                    "lime_settings": settings.to_json(),
                    "sample_ids": ids,
                }
            ]
        ),
        rows=pl.DataFrame(
            {
                "scoring_run_id": [run["scoring_run_id"]] * len(ids),
                "as_of_date": [run["as_of_date"]] * len(ids),
                key: ids,
                "row_seed": found.seeds,
                "score": rows["score"].to_numpy()[index],
                "lime_intercept": found.intercept,
                "lime_local_prediction": found.local_prediction,
                "lime_fit_r2": found.fit_r2,
                "spearman": per_row.spearman,
                "sign_agreement": per_row.sign,
            }
            | {
                column: found.weights[:, i]
                for i, column in enumerate(tables.evidence.lime_weight_columns)
            }
        ),
        shap=shap,
        lime=found.weights,
        per_row=per_row,
    )


def fairness_rule(use_case: UseCase) -> FairnessRule:
    spec = use_case.fairness
    if spec is None:
        raise EvidenceError(f"use case {use_case.name!r} declares no fairness section")
    return FairnessRule(
        adverse_bands=spec.adverse_bands,
        adverse_decision=use_case.scoring.decision_above,
        min_adverse_impact_ratio=spec.min_adverse_impact_ratio,
        min_group_rows=spec.min_group_rows,
    )


def fairness_evidence(lake: Lakehouse, use_case: UseCase, run: Run) -> pl.DataFrame:
    """Rows of ``monitoring.<uc>_fairness`` for one run (without the run stamp)."""
    rule = fairness_rule(use_case)
    key, label = use_case.entity.join_key, use_case.label.definition
    scored = run_predictions(lake, use_case, run)
    attributes = protected_frame(lake, use_case, scored[key], run["as_of_date"])
    outcomes = matured_labels(lake, use_case, [label_day(run["as_of_date"])]).select(
        key, pl.col(label.column).alias(OUTCOME)
    )
    frame = scored.join(attributes, on=key, how="left").join(outcomes, on=key, how="left")
    groups = group_fairness(frame, list(use_case.protected_attributes), rule)
    return groups.select(
        *(pl.lit(v).alias(k) for k, v in _run_columns(run).items()), pl.all()
    ).with_columns(pl.col("as_of_date").cast(pl.Date))


def stamp(frame: pl.DataFrame, dagster_run_id: str) -> pl.DataFrame:
    """The computing run and time, as every evidence row carries them."""
    return frame.with_columns(
        pl.lit(dagster_run_id).alias("dagster_run_id"),
        pl.lit(datetime.now(UTC)).alias("computed_at"),
    )
