"""Train the churn classifier: input checks, time-based split, xgboost with early stopping.

Split (on ``as_of_date``, calendar days counted back from the latest as-of date):

    train … train_end | gap_days | validation_start … validation_end | test_gap_days | test …

A row with as-of ``A`` carries a label observed over days ``A … A + 29``. With
``gap_days = 30`` the label window of every training row ends before the first validation
(and so the first test) as-of date: no outcome the trees were fitted on lies in a later split's
period. The test split is the out-of-time set the model is judged and compared on.
``test_gap_days`` (default 0) does the same between validation and test: validation only picks
the early-stopping round, and the demo's weekly snapshots over 150 days cannot afford a second
30-day gap; set it to 30 for a strictly out-of-time test once history is long enough.

Class imbalance: by default rows are **not** reweighted (``scale_pos_weight = 1``). The model's
probabilities are used as risks and promotion bounds their calibration error; reweighting
positives by ``neg/pos`` would inflate every probability by roughly that factor. Imbalance is
instead handled in evaluation (PR-AUC, lift, log loss) and early stopping uses log loss, a
proper scoring rule. ``scale_pos_weight=None`` opts into ``neg/pos`` for ranking-only uses.

Deterministic: a fixed ``seed`` and ``nthread`` give a byte-identical model JSON.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import polars as pl
import xgboost as xgb

from lakehouse.labels import HORIZON_DAYS
from models.encoding import LABEL, check_feature_columns, feature_matrix, feature_names
from models.metrics import binary_metrics

SPLITS = ("train", "validation", "test")


class TrainingDataError(ValueError):
    """The training set cannot train a model (one class, too small, split without rows …)."""


@dataclass(frozen=True)
class TrainingParams:
    """Hyper-parameters, split sizes and input floors of one training run."""

    seed: int = 42
    nthread: int = 2
    num_boost_round: int = 500
    early_stopping_rounds: int = 30
    learning_rate: float = 0.05
    max_depth: int = 4
    min_child_weight: float = 5.0
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    reg_lambda: float = 1.0
    max_bin: int = 256
    scale_pos_weight: float | None = 1.0
    """1.0: no reweighting (keeps calibration); None: ``neg/pos`` of the training split."""
    validation_days: int = 14
    test_days: int = 14
    gap_days: int = 30
    """Days between the last training and first validation as-of (≥ label horizon: 30)."""
    test_gap_days: int = 0
    """Days between the last validation and first test as-of."""
    min_rows: int = 1000
    """Fewer rows in the training set than this is an error, before any split."""

    def xgb_params(self, scale_pos_weight: float) -> dict[str, Any]:
        """The booster parameters (early stopping watches the last metric: log loss)."""
        return {
            "objective": "binary:logistic",
            "eval_metric": ["auc", "logloss"],
            "tree_method": "hist",
            "seed": self.seed,
            "nthread": self.nthread,
            "eta": self.learning_rate,
            "max_depth": self.max_depth,
            "min_child_weight": self.min_child_weight,
            "subsample": self.subsample,
            "colsample_bytree": self.colsample_bytree,
            "lambda": self.reg_lambda,
            "max_bin": self.max_bin,
            "scale_pos_weight": scale_pos_weight,
        }


@dataclass(frozen=True)
class TimeSplit:
    """Inclusive as-of date ranges of the three splits."""

    train_start: date
    train_end: date
    validation_start: date
    validation_end: date
    test_start: date
    test_end: date

    @classmethod
    def from_dates(cls, first: date, last: date, params: TrainingParams) -> TimeSplit:
        """Boundaries counted back from ``last`` (see the module docstring)."""
        if params.gap_days < HORIZON_DAYS:
            raise ValueError(
                f"gap_days={params.gap_days} is shorter than the {HORIZON_DAYS}-day label "
                "window: training labels would overlap the validation period"
            )
        test_start = last - timedelta(days=params.test_days - 1)
        validation_end = test_start - timedelta(days=max(params.test_gap_days, 1))
        validation_start = validation_end - timedelta(days=params.validation_days - 1)
        train_end = validation_start - timedelta(days=params.gap_days)
        if train_end < first:
            needed = (
                params.test_days + params.validation_days + params.gap_days + params.test_gap_days
            )
            raise TrainingDataError(
                f"as-of dates {first}..{last} span {(last - first).days + 1} days; the split "
                f"needs more than {needed} (test {params.test_days} + gap "
                f"{params.test_gap_days} + validation {params.validation_days} + gap "
                f"{params.gap_days}) to leave training days"
            )
        return cls(first, train_end, validation_start, validation_end, test_start, last)

    def bounds(self, split: str) -> tuple[date, date]:
        return getattr(self, f"{split}_start"), getattr(self, f"{split}_end")

    def rows(self, frame: pl.DataFrame, split: str) -> pl.DataFrame:
        """The rows of ``frame`` whose ``as_of_date`` falls in ``split``."""
        start, end = self.bounds(split)
        return frame.filter(pl.col("as_of_date").is_between(start, end))

    def to_tags(self) -> dict[str, str]:
        return {f"split.{k}": v.isoformat() for k, v in asdict(self).items()}

    @classmethod
    def from_tags(cls, tags: dict[str, str]) -> TimeSplit:
        return cls(**{k: date.fromisoformat(tags[f"split.{k}"]) for k in cls.__dataclass_fields__})


@dataclass
class TrainedModel:
    """A fitted booster (cut at its best iteration) with its split and evaluation."""

    booster: xgb.Booster
    params: TrainingParams
    split: TimeSplit
    best_iteration: int
    scale_pos_weight: float
    rows: dict[str, int]
    positives: dict[str, int]
    metrics: dict[str, dict[str, float]]
    """``{"validation": {...}, "test": {...}}`` of ``models.metrics.binary_metrics``."""
    predictions: dict[str, pl.DataFrame] = field(repr=False)
    """Per evaluated split: customer_id, as_of_date, churned_30d, prediction."""

    def model_json(self) -> bytes:
        """The model in xgboost's own JSON format (never pickle)."""
        return bytes(self.booster.save_raw("json"))

    def flat_metrics(self) -> dict[str, float]:
        """``{split}_{metric}`` for MLflow, plus ``best_iteration``."""
        flat = {f"{s}_{k}": v for s, values in self.metrics.items() for k, v in values.items()}
        return {**flat, "best_iteration": float(self.best_iteration)}


def check_training_frame(frame: pl.DataFrame, params: TrainingParams) -> None:
    """Raise before any training when the frame cannot train a model.

    Checks, in order: the feature columns equal the feature service's (names and types,
    ``FeatureListError`` naming the differences); the label column exists, is 0/1 and
    non-null; at least ``params.min_rows`` rows; both classes present.
    """
    check_feature_columns(frame)
    if LABEL not in frame.columns:
        raise TrainingDataError(f"training set has no label column {LABEL!r}")
    labels = frame[LABEL]
    if labels.null_count():
        raise TrainingDataError(f"label {LABEL!r} has {labels.null_count()} null rows")
    outside = frame.filter(~pl.col(LABEL).is_in([0, 1])).height
    if outside:
        raise TrainingDataError(f"label {LABEL!r} has {outside} rows that are not 0 or 1")
    if frame.height < params.min_rows:
        raise TrainingDataError(
            f"training set has {frame.height} rows, fewer than the minimum {params.min_rows} "
            "(TrainingParams.min_rows)"
        )
    classes = sorted(labels.unique().to_list())
    if len(classes) < 2:
        raise TrainingDataError(
            f"label {LABEL!r} has one class only ({classes[0]} in all {frame.height} rows): "
            "a classifier needs churned and retained customers"
        )


def predict(booster: xgb.Booster, frame: pl.DataFrame) -> np.ndarray:
    """Churn probabilities of ``frame``'s rows (every tree of ``booster``)."""
    matrix = xgb.DMatrix(feature_matrix(frame), feature_names=feature_names(), missing=np.nan)
    return booster.predict(matrix)


def train(frame: pl.DataFrame, params: TrainingParams | None = None) -> TrainedModel:
    """Check ``frame``, split it by time, fit with early stopping on validation, evaluate.

    Raises ``TrainingDataError`` / ``FeatureListError`` before fitting (see
    ``check_training_frame``), and when a split has no rows or a single class.
    """
    params = params or TrainingParams()
    check_training_frame(frame, params)
    dates = frame["as_of_date"]
    split = TimeSplit.from_dates(dates.min(), dates.max(), params)  # type: ignore[arg-type]
    parts = {name: split.rows(frame, name) for name in SPLITS}
    for name, part in parts.items():
        positives = int(part[LABEL].sum()) if part.height else 0
        if positives in (0, part.height):
            start, end = split.bounds(name)
            raise TrainingDataError(
                f"{name} split ({start}..{end}) has {part.height} rows with {positives} "
                "positives: it needs both classes"
            )
    y_train = parts["train"][LABEL].to_numpy()
    spw = params.scale_pos_weight
    if spw is None:
        spw = float((y_train == 0).sum() / y_train.sum())
    names = feature_names()
    matrices = {
        name: xgb.DMatrix(
            feature_matrix(part), label=part[LABEL].to_numpy(), feature_names=names, missing=np.nan
        )
        for name, part in parts.items()
    }
    fitted = xgb.train(
        params.xgb_params(spw),
        matrices["train"],
        num_boost_round=params.num_boost_round,
        evals=[(matrices["validation"], "validation")],
        early_stopping_rounds=params.early_stopping_rounds,
        verbose_eval=False,
    )
    best = int(fitted.best_iteration)
    booster = fitted[: best + 1]  # keep only the trees up to the best round
    booster.set_attr(feature_service="churn_v1", label=LABEL)
    predictions = {
        name: parts[name]
        .select("customer_id", "as_of_date", LABEL)
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
        positives={name: int(part[LABEL].sum()) for name, part in parts.items()},
        metrics={
            name: binary_metrics(rows[LABEL].to_numpy(), rows["prediction"].to_numpy())
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
