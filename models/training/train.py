"""Train a use case's binary classifier: input checks, its split, xgboost with early stopping.

The split and its rules are in ``models.training.params``. The booster is cut at its best
iteration, so every later ``predict`` and explanation uses exactly the trees that were chosen.
Monotone constraints declared by the use case are passed to xgboost. Deterministic: a fixed
``seed`` and ``nthread`` give a byte-identical model JSON.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import polars as pl
import xgboost as xgb

from models.encoding import AS_OF, FeatureEncoding
from models.metrics import binary_metrics
from models.training.params import SPLITS, ModelDesign, Split, TrainingDataError, TrainingParams


@dataclass
class TrainedModel:
    """A fitted booster (cut at its best iteration) with its split and evaluation."""

    booster: xgb.Booster
    params: TrainingParams
    split: Split
    best_iteration: int
    scale_pos_weight: float
    rows: dict[str, int]
    positives: dict[str, int]
    metrics: dict[str, dict[str, float]]
    """``{"validation": {...}, "test": {...}}`` of ``models.metrics.binary_metrics``."""
    predictions: dict[str, pl.DataFrame] = field(repr=False)
    """Per evaluated split: the entity key, as_of_date, the label, prediction."""

    def model_json(self) -> bytes:
        """The model in xgboost's own JSON format (never pickle)."""
        return bytes(self.booster.save_raw("json"))

    def flat_metrics(self) -> dict[str, float]:
        """``{split}_{metric}`` for MLflow, plus ``best_iteration``."""
        flat = {f"{s}_{k}": v for s, values in self.metrics.items() for k, v in values.items()}
        return {**flat, "best_iteration": float(self.best_iteration)}


def check_training_frame(frame: pl.DataFrame, design: ModelDesign, params: TrainingParams) -> None:
    """Raise before any training when the frame cannot train a model.

    Checks, in order: the feature columns equal the feature service's (names and types,
    ``FeatureListError`` naming the differences); the label column exists, is 0/1 and
    non-null; at least ``params.min_rows`` rows; both classes present.
    """
    design.encoding.check(frame)
    label = design.encoding.label
    if label not in frame.columns:
        raise TrainingDataError(f"training set has no label column {label!r}")
    labels = frame[label]
    if labels.null_count():
        raise TrainingDataError(f"label {label!r} has {labels.null_count()} null rows")
    outside = frame.filter(~pl.col(label).is_in([0, 1])).height
    if outside:
        raise TrainingDataError(f"label {label!r} has {outside} rows that are not 0 or 1")
    if frame.height < params.min_rows:
        raise TrainingDataError(
            f"training set has {frame.height} rows, fewer than the minimum {params.min_rows} "
            "(TrainingParams.min_rows)"
        )
    classes = sorted(labels.unique().to_list())
    if len(classes) < 2:
        raise TrainingDataError(
            f"label {label!r} has one class only ({classes[0]} in all {frame.height} rows): "
            "a classifier needs both outcomes"
        )


def predict(booster: xgb.Booster, encoding: FeatureEncoding, frame: pl.DataFrame) -> np.ndarray:
    """Probabilities of ``frame``'s rows (every tree of ``booster``)."""
    matrix = xgb.DMatrix(encoding.matrix(frame), feature_names=encoding.names, missing=np.nan)
    return booster.predict(matrix)


def train(
    frame: pl.DataFrame, design: ModelDesign, params: TrainingParams | None = None
) -> TrainedModel:
    """Check ``frame``, split it, fit with early stopping on validation, evaluate.

    Raises ``TrainingDataError`` / ``FeatureListError`` before fitting (see
    ``check_training_frame``), and when a split has no rows or a single class.
    """
    params = params or TrainingParams()
    check_training_frame(frame, design, params)
    encoding, label = design.encoding, design.encoding.label
    split = design.split_for(frame, params)
    parts = {name: split.rows(frame, name) for name in SPLITS}
    for name, part in parts.items():
        positives = int(part[label].sum()) if part.height else 0
        if positives in (0, part.height):
            raise TrainingDataError(
                f"{split.describe(name)} has {part.height} rows with {positives} "
                "positives: it needs both classes"
            )
    y_train = parts["train"][label].to_numpy()
    spw = params.scale_pos_weight
    if spw is None:
        spw = float((y_train == 0).sum() / y_train.sum())
    matrices = {
        name: xgb.DMatrix(
            encoding.matrix(part),
            label=part[label].to_numpy(),
            feature_names=encoding.names,
            missing=np.nan,
        )
        for name, part in parts.items()
    }
    fitted = xgb.train(
        params.xgb_params(spw, design.constraints()),
        matrices["train"],
        num_boost_round=params.num_boost_round,
        evals=[(matrices["validation"], "validation")],
        early_stopping_rounds=params.early_stopping_rounds,
        verbose_eval=False,
    )
    best = int(fitted.best_iteration)
    booster = fitted[: best + 1]  # keep only the trees up to the best round
    booster.set_attr(feature_service=encoding.feature_service, label=label)
    predictions = {
        name: parts[name]
        .select(encoding.join_key, AS_OF, label)
        .with_columns(pl.Series("prediction", booster.predict(matrices[name])))
        for name in ("validation", "test")
    }
    return TrainedModel(
        booster=booster,
        params=params,
        split=split,
        best_iteration=best,
        scale_pos_weight=spw,
        rows={name: part.height for name, part in parts.items()},
        positives={name: int(part[label].sum()) for name, part in parts.items()},
        metrics={
            name: binary_metrics(rows[label].to_numpy(), rows["prediction"].to_numpy())
            for name, rows in predictions.items()
        },
        predictions=predictions,
    )


def params_for_logging(model: TrainedModel) -> dict[str, str]:
    """Every hyper-parameter and split figure as MLflow params (strings)."""
    values: dict[str, Any] = {
        **asdict(model.params),
        "scale_pos_weight_used": model.scale_pos_weight,
        **{f"rows_{k}": v for k, v in model.rows.items()},
        **{f"positives_{k}": v for k, v in model.positives.items()},
    }
    return {k: json.dumps(v) if not isinstance(v, str) else v for k, v in values.items()}
