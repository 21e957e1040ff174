"""LIME explanations of scored rows, and their agreement with the recorded TreeSHAP.

LIME (``lime.lime_tabular``) fits a weighted linear model to the scoring model's probability
on perturbations of one row; a feature's weight ``w`` is the effect of keeping the row's value
(its quartile bin, or its category) instead of a value drawn from the training distribution.
What we compare with SHAP is LIME's *attribution* ``w × (1 − q)``, ``q`` the training share
of the row's bin: the feature's part of the local model's difference between the row and an
average perturbation — the same decomposition SHAP makes of ``f(x) − E f``. (The raw weight
over-states a typical value: ``current_dpd = 0`` shares its bin with 95 % of loans, so being in
it explains little, as SHAP says; its weight is large only because the other bins are risky.)
TreeSHAP values are exact and additive in log-odds and stay the system of record; LIME is an
independent, model-agnostic second opinion. Agreement is measured per row on its ``top_k``
features by |SHAP|:

* Spearman rank correlation between |SHAP| and |LIME weight| over those features;
* sign agreement: the share of those features whose SHAP value and LIME weight have one sign;
* top-1 agreement: whether both name the same most important feature.

Reproducible: the perturbation stream of each row is seeded by ``row_seed(seed, entity id)``,
so one row's explanation is the same whether it is explained alone or in a batch. LIME cannot
perturb a missing value, so rows with a missing input are left out of the sample and counted.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from lime.lime_tabular import LimeTabularExplainer
from threadpoolctl import threadpool_limits

Predict = Callable[[np.ndarray], np.ndarray]
"""Encoded rows (float) → probabilities of the positive class."""


@dataclass(frozen=True)
class LimeSettings:
    """Everything that determines a LIME explanation besides the row and the model."""

    num_samples: int = 1000
    seed: int = 0
    discretizer: str = "quartile"
    kernel_width: float | None = None
    """None: LIME's default, 0.75 × √(features)."""
    training_rows: int = 5000
    """Rows of the training set LIME takes its feature statistics from (a seeded sample)."""

    def to_json(self) -> str:
        return json.dumps(
            {
                "library": "lime.lime_tabular.LimeTabularExplainer",
                "mode": "classification",
                "num_samples": self.num_samples,
                "seed": self.seed,
                "discretize_continuous": True,
                "discretizer": self.discretizer,
                "kernel_width": self.kernel_width,
                "training_rows": self.training_rows,
                "row_seed": "sha256('<seed>:<entity id>') mod 2**32",
            },
            sort_keys=True,
        )


@dataclass(frozen=True)
class LimeResult:
    """LIME of ``rows`` rows: attributions ``(rows, features)`` (``w × (1 − q)``, see the
    module docstring), intercept, local prediction and fit (R²) of each local model."""

    weights: np.ndarray
    intercept: np.ndarray
    local_prediction: np.ndarray
    fit_r2: np.ndarray
    seeds: np.ndarray


def row_seed(seed: int, entity_id: str) -> int:
    """The seed of one row's perturbations (stable across runs, platforms and batch sizes)."""
    digest = hashlib.sha256(f"{seed}:{entity_id}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def probability_function(predict: Predict) -> Callable[[np.ndarray], np.ndarray]:
    """``predict_proba`` for LIME: columns (negative, positive) over encoded float rows."""

    def predict_proba(rows: np.ndarray) -> np.ndarray:
        positive = np.asarray(predict(np.ascontiguousarray(rows, dtype=np.float32)), np.float64)
        return np.column_stack([1.0 - positive, positive])

    return predict_proba


def training_statistics(matrix: np.ndarray, rows: int, seed: int) -> np.ndarray:
    """A seeded sample of complete training rows (LIME needs finite values for its bins)."""
    complete = matrix[~np.isnan(matrix).any(axis=1)]
    if not len(complete):
        raise ValueError("no training row without missing values: LIME has no statistics")
    if len(complete) > rows:
        picked = np.random.default_rng(seed).choice(len(complete), rows, replace=False)
        complete = complete[np.sort(picked)]
    return complete.astype(np.float64)


class LimeExplainer:
    """A seeded LIME explainer over a model's encoded features."""

    def __init__(
        self,
        predict: Predict,
        training: np.ndarray,
        names: Sequence[str],
        categories: Mapping[str, Sequence[str]],
        settings: LimeSettings,
    ) -> None:
        self.names, self.settings = list(names), settings
        self._predict_proba = probability_function(predict)
        self._random = np.random.RandomState(settings.seed)
        categorical = [i for i, n in enumerate(self.names) if n in categories]
        with warnings.catch_warnings():  # constant columns make the quartile bins degenerate
            warnings.simplefilter("ignore")
            self._lime = LimeTabularExplainer(
                training_statistics(training, settings.training_rows, settings.seed),
                mode="classification",
                feature_names=self.names,
                categorical_features=categorical,
                categorical_names={i: list(categories[self.names[i]]) for i in categorical},
                discretize_continuous=True,
                discretizer=settings.discretizer,
                kernel_width=settings.kernel_width,
                random_state=self._random,  # shared by the sampler, discretizer and base
            )

    def explain(self, matrix: np.ndarray, entity_ids: Sequence[str]) -> LimeResult:
        """LIME of each (complete) row of ``matrix``; ``entity_ids`` seed the rows."""
        if np.isnan(matrix).any():
            raise ValueError("LIME cannot perturb missing values: drop incomplete rows first")
        n, k = matrix.shape
        weights = np.zeros((n, k))
        intercept, local, fit = np.zeros(n), np.zeros(n), np.zeros(n)
        seeds = np.array([row_seed(self.settings.seed, e) for e in entity_ids], dtype=np.int64)
        # One BLAS thread: each local fit is tiny (num_samples × features), and thread start-up
        # and contention cost 10-25x the fit itself on a shared machine.
        with threadpool_limits(limits=1, user_api="blas"):
            for i in range(n):
                self._explain_row(matrix[i], int(seeds[i]), i, weights, intercept, local, fit)
        return LimeResult(weights, intercept, local, fit, seeds)

    def _explain_row(
        self,
        row: np.ndarray,
        seed: int,
        i: int,
        weights: np.ndarray,
        intercept: np.ndarray,
        local: np.ndarray,
        fit: np.ndarray,
    ) -> None:
        self._random.seed(seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found = self._lime.explain_instance(
                row.astype(np.float64),
                self._predict_proba,
                labels=(1,),
                num_features=len(self.names),
                num_samples=self.settings.num_samples,
            )
        bins = self._lime.discretizer.discretize(row.astype(np.float64))
        for feature, weight in found.local_exp[1]:
            values = list(self._lime.feature_values[feature])
            share = (
                float(self._lime.feature_frequencies[feature][values.index(bins[feature])])
                if bins[feature] in values
                else 0.0
            )
            weights[i, feature] = weight * (1.0 - share)
        intercept[i] = found.intercept[1]
        local[i] = np.asarray(found.local_pred).ravel()[0]
        fit[i] = found.score


def _ranks(values: np.ndarray) -> np.ndarray:
    """Average ranks (1 = smallest) along the last axis, ties sharing their mean rank."""
    order = np.argsort(values, axis=-1, kind="stable")
    ranks = np.empty_like(values, dtype=np.float64)
    positions = np.arange(1, values.shape[-1] + 1, dtype=np.float64)
    np.put_along_axis(ranks, order, np.broadcast_to(positions, values.shape), axis=-1)
    for row in range(values.shape[0]):  # ties: few features, so a plain loop is cheap
        unique, inverse = np.unique(values[row], return_inverse=True)
        if len(unique) < values.shape[-1]:
            sums = np.bincount(inverse, weights=ranks[row])
            ranks[row] = (sums / np.bincount(inverse))[inverse]
    return ranks


def top_features(shap: np.ndarray, top_k: int) -> np.ndarray:
    """Indices ``(rows, top_k)`` of each row's largest |SHAP| features (ties: column order)."""
    return np.argsort(-np.abs(shap), axis=1, kind="stable")[:, :top_k]


@dataclass(frozen=True)
class Agreement:
    """Per-row agreement of LIME with SHAP on each row's top-k SHAP features."""

    spearman: np.ndarray
    sign: np.ndarray
    top1: np.ndarray

    def summary(self) -> dict[str, float]:
        finite = self.spearman[np.isfinite(self.spearman)]
        return {
            "mean_spearman": float(finite.mean()) if finite.size else float("nan"),
            "median_spearman": float(np.median(finite)) if finite.size else float("nan"),
            "sign_agreement": float(self.sign.mean()) if self.sign.size else float("nan"),
            "top1_agreement": float(self.top1.mean()) if self.top1.size else float("nan"),
        }


def agreement(shap: np.ndarray, lime: np.ndarray, top_k: int) -> Agreement:
    """Agreement per row (see the module docstring); Spearman is NaN where either side is
    constant over the row's top features (undefined)."""
    top = top_features(shap, top_k)
    s = np.abs(np.take_along_axis(shap, top, axis=1))
    w = np.abs(np.take_along_axis(lime, top, axis=1))
    rs, rw = _ranks(s), _ranks(w)
    rs -= rs.mean(axis=1, keepdims=True)
    rw -= rw.mean(axis=1, keepdims=True)
    norm = np.sqrt((rs**2).sum(axis=1) * (rw**2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        spearman = np.where(norm > 0, (rs * rw).sum(axis=1) / norm, np.nan)
    signs = np.sign(np.take_along_axis(shap, top, axis=1)) == np.sign(
        np.take_along_axis(lime, top, axis=1)
    )
    top1 = np.argmax(np.abs(lime), axis=1) == top[:, 0]
    return Agreement(spearman, signs.mean(axis=1), top1.astype(np.float64))
