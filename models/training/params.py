"""What a training run is given: hyper-parameters, the model design of its use case, the split.

No xgboost here: use-case specs import this module. Time split (on ``as_of_date``, calendar
days counted back from the latest as-of date):

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

Snapshot data (one as-of date, no time order) uses ``HoldoutSplit``: entities are assigned to
train / validation / test by a stable hash of their key.

Deterministic: a fixed ``seed`` and ``nthread`` give a byte-identical model JSON.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import date, timedelta
from typing import Any, ClassVar, Literal

import polars as pl

from models.encoding import AS_OF, FeatureEncoding

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
    validation_share: float = 0.15
    test_share: float = 0.15
    """Holdout split (snapshot data without dates): shares of entities in validation and test."""

    def xgb_params(self, scale_pos_weight: float, monotone: Sequence[int] = ()) -> dict[str, Any]:
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
            **(
                {"monotone_constraints": f"({','.join(map(str, monotone))})"}
                if any(monotone)
                else {}
            ),
        }


@dataclass(frozen=True)
class ModelDesign:
    """What a use case fixes about its model beyond hyper-parameters."""

    encoding: FeatureEncoding
    label_horizon_days: int
    split: Literal["time", "holdout"] = "time"
    monotone_constraints: Mapping[str, int] = field(default_factory=dict)
    """Feature → +1 (the score never decreases with it), -1 (never increases); others free."""

    def __post_init__(self) -> None:
        unknown = [f for f in self.monotone_constraints if f not in self.encoding.features]
        bad = {f: d for f, d in self.monotone_constraints.items() if d not in (-1, 0, 1)}
        if unknown or bad:
            raise ValueError(
                f"monotone constraints on unknown features {unknown} or not -1/0/+1: {bad}"
            )

    def constraints(self) -> tuple[int, ...]:
        """The constraint of every feature, in model order."""
        return tuple(self.monotone_constraints.get(f, 0) for f in self.encoding.names)

    def split_for(self, frame: pl.DataFrame, params: TrainingParams) -> Split:
        """The split of a training frame."""
        if self.split == "holdout":
            return HoldoutSplit(self.encoding.join_key, params.validation_share, params.test_share)
        dates = frame[AS_OF]
        first, last = dates.min(), dates.max()
        assert isinstance(first, date) and isinstance(last, date)
        return TimeSplit.from_dates(first, last, params, self.label_horizon_days)


@dataclass(frozen=True)
class TimeSplit:
    """Inclusive as-of date ranges of the three splits."""

    train_start: date
    train_end: date
    validation_start: date
    validation_end: date
    test_start: date
    test_end: date

    kind: ClassVar[str] = "time"

    @classmethod
    def from_dates(
        cls, first: date, last: date, params: TrainingParams, horizon_days: int
    ) -> TimeSplit:
        """Boundaries counted back from ``last`` (see the module docstring)."""
        if params.gap_days < horizon_days:
            raise ValueError(
                f"gap_days={params.gap_days} is shorter than the {horizon_days}-day label "
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

    def describe(self, split: str) -> str:
        start, end = self.bounds(split)
        return f"{split} split ({start}..{end})"

    def rows(self, frame: pl.DataFrame, split: str) -> pl.DataFrame:
        """The rows of ``frame`` whose ``as_of_date`` falls in ``split``."""
        start, end = self.bounds(split)
        return frame.filter(pl.col(AS_OF).is_between(start, end))

    def to_tags(self) -> dict[str, str]:
        tags = {f"split.{k}": v.isoformat() for k, v in asdict(self).items()}
        return {"split.kind": self.kind, **tags}

    @classmethod
    def from_tags(cls, tags: Mapping[str, str]) -> TimeSplit:
        names = [f.name for f in fields(cls)]
        return cls(**{k: date.fromisoformat(tags[f"split.{k}"]) for k in names})


@dataclass(frozen=True)
class HoldoutSplit:
    """Entities split by a stable hash of their key (snapshot data: one as-of date, no time
    order to split on). The same key always lands in the same split, whatever the row order."""

    join_key: str
    validation_share: float
    test_share: float
    kind: ClassVar[str] = "holdout"

    def __post_init__(self) -> None:
        shares = (self.validation_share, self.test_share)
        if min(shares) <= 0 or sum(shares) >= 1:
            raise ValueError(f"holdout shares must be > 0 and sum to < 1, got {shares}")

    def rows(self, frame: pl.DataFrame, split: str) -> pl.DataFrame:
        """The rows of ``frame`` whose key hashes into ``split``."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}")
        bucket = frame[self.join_key].map_elements(_unit_hash, return_dtype=pl.Float64)
        test = bucket < self.test_share
        validation = ~test & (bucket < self.test_share + self.validation_share)
        mask = {"test": test, "validation": validation, "train": ~test & ~validation}[split]
        return frame.filter(mask)

    def describe(self, split: str) -> str:
        return f"{split} holdout ({self.join_key} hash)"

    def to_tags(self) -> dict[str, str]:
        return {
            "split.kind": self.kind,
            "split.join_key": self.join_key,
            "split.validation_share": str(self.validation_share),
            "split.test_share": str(self.test_share),
        }

    @classmethod
    def from_tags(cls, tags: Mapping[str, str]) -> HoldoutSplit:
        return cls(
            tags["split.join_key"],
            float(tags["split.validation_share"]),
            float(tags["split.test_share"]),
        )


Split = TimeSplit | HoldoutSplit


def split_from_tags(tags: Mapping[str, str]) -> Split:
    """The split a model version was trained with, from its tags."""
    if tags.get("split.kind") == HoldoutSplit.kind:
        return HoldoutSplit.from_tags(tags)
    return TimeSplit.from_tags(tags)


def _unit_hash(key: str) -> float:
    """A key's position in [0, 1): stable across processes and library versions."""
    return zlib.crc32(key.encode()) / 2**32
