"""The credit model keeps credit policy's monotone constraints: trained with the spec's design on
data where the risk is *not* monotone in utilisation and debt-to-income, its predictions still
never move against a constrained feature on a grid over each one, while the same model trained
without the constraints does."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import numpy as np
import polars as pl
import pytest
import xgboost as xgb

from lakehouse.sources.lending.contract import GRADES, PURPOSES
from models.training.params import TrainingParams
from models.training.train import TrainedModel, train
from models.usecase import UseCase
from tests.credit_world import credit

CREDIT: UseCase = credit()
PARAMS = TrainingParams(nthread=1, num_boost_round=150, min_rows=500)
GRID = 30


def _training_frame(rows: int = 6000, seed: int = 0) -> pl.DataFrame:
    """One row per loan; risk rises with days past due and falls with the bureau score, but is
    U-shaped in utilisation and debt-to-income (a pattern policy forbids the model to learn)."""
    rng = np.random.default_rng(seed)
    dpd = rng.choice([0, 30, 60], size=rows, p=[0.9, 0.06, 0.04])
    utilization = rng.uniform(0.0, 1.2, rows)
    dti = rng.uniform(0.05, 0.7, rows)
    score = rng.integers(560, 851, rows)
    logit = (
        -3.0
        + 0.05 * dpd
        - 0.012 * (score - 700)
        + 6.0 * (utilization - 0.6) ** 2
        + 12.0 * (dti - 0.35) ** 2
    )
    defaulted = rng.random(rows) < 1 / (1 + np.exp(-logit))
    missed = (dpd // 30) + rng.integers(0, 2, rows)
    features = {
        "current_dpd": dpd,
        "max_dpd_3m": dpd,
        "max_dpd_6m": dpd + 30 * rng.integers(0, 2, rows),
        "max_dpd_12m": dpd + 30 * rng.integers(0, 3, rows),
        "missed_payments_3m": missed,
        "missed_payments_6m": missed + rng.integers(0, 2, rows),
        "missed_payments_12m": missed + rng.integers(0, 3, rows),
        "months_on_book": rng.integers(0, 60, rows),
        "revolving_utilization": utilization,
        "utilization_trend_6m": rng.normal(0.0, 0.1, rows),
        "debt_to_income": dti,
        "inquiries_6m": rng.poisson(1.5, rows),
        "bureau_score": score,
        "delinquencies_2y": rng.poisson(0.2, rows),
        "amount": rng.uniform(1000, 40000, rows),
        "term_months": rng.choice([36, 60], rows),
        "interest_rate": rng.uniform(7, 25, rows),
        "grade": rng.choice(list(GRADES), rows),
        "purpose": rng.choice(list(PURPOSES), rows),
        "annual_income": rng.uniform(20000, 150000, rows),
        "employment_years": rng.integers(0, 11, rows),
    }
    frame = pl.DataFrame(
        {
            "loan_id": [f"L{i:07d}" for i in range(rows)],
            "as_of_date": [date(2026, 1, 1)] * rows,
            "event_timestamp": [datetime(2026, 1, 1, tzinfo=UTC)] * rows,
            "defaulted_12m": defaulted.astype(np.int64),
            **features,
        }
    ).with_columns((pl.col("amount") / pl.col("annual_income")).alias("amount_to_income"))
    spec = CREDIT.table_spec(CREDIT.tables.training_set)
    return frame.select([pl.col(c).cast(t) for c, t in spec.schema.items()])


def violations(model: TrainedModel, frame: pl.DataFrame, feature: str, direction: int) -> int:
    """Rows whose prediction moves against ``direction`` anywhere on a grid over ``feature``
    (every other feature held at the row's values)."""
    encoding = CREDIT.encoding
    base = encoding.matrix(frame.head(300))
    column = encoding.names.index(feature)
    values = encoding.matrix(frame)[:, column]
    grid = np.linspace(values.min() - 1.0, values.max() + 1.0, GRID)
    stacked = np.repeat(base, GRID, axis=0)
    stacked[:, column] = np.tile(grid, len(base))
    matrix = xgb.DMatrix(stacked, feature_names=encoding.names, missing=np.nan)
    margins = model.booster.predict(matrix, output_margin=True).reshape(len(base), GRID)
    return int((np.diff(margins, axis=1) * direction < 0).any(axis=1).sum())


@pytest.fixture(scope="module")
def frame() -> pl.DataFrame:
    return _training_frame()


def test_the_credit_model_never_moves_against_a_constrained_feature(frame: pl.DataFrame) -> None:
    model = train(frame, CREDIT.design, PARAMS)
    constraints = CREDIT.design.monotone_constraints
    assert len(constraints) >= 10
    found = {f: violations(model, frame, f, d) for f, d in constraints.items()}
    assert found == dict.fromkeys(constraints, 0)
    assert model.metrics["test"]["roc_auc"] > 0.7  # it still learned the risk


def test_without_the_constraints_the_same_data_gives_violations(frame: pl.DataFrame) -> None:
    free = train(frame, replace(CREDIT.design, monotone_constraints={}), PARAMS)
    assert violations(free, frame, "revolving_utilization", 1) > 50
    assert violations(free, frame, "debt_to_income", 1) > 50
