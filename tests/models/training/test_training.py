"""Training: errors before fitting, the time split, determinism, encoding."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import numpy as np
import polars as pl
import pytest
import xgboost as xgb

from lakehouse.sources.saas.contract import PLANS
from models.encoding import FeatureListError
from models.training import train as training
from models.training.params import TimeSplit, TrainingDataError
from models.training.train import TrainedModel
from tests.models.conftest import FAST
from tests.models.synthetic import CHURN, SyntheticData

ENCODING = CHURN.encoding


def train(frame: pl.DataFrame, params: object) -> TrainedModel:
    return training.train(frame, CHURN.design, params)  # type: ignore[arg-type]


@pytest.fixture
def no_fitting(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any call to xgboost's training fails the test: errors must come before it."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("xgboost.train was called")

    monkeypatch.setattr(training.xgb, "train", refuse)


@pytest.mark.usefixtures("no_fitting")
def test_one_class_label_is_refused_before_training(synthetic: SyntheticData) -> None:
    frame = synthetic.training_set.with_columns(pl.lit(0, dtype=pl.Int64).alias("churned_30d"))
    with pytest.raises(TrainingDataError, match="one class only"):
        train(frame, FAST)


@pytest.mark.usefixtures("no_fitting")
def test_too_small_training_set_is_refused_before_training(synthetic: SyntheticData) -> None:
    with pytest.raises(TrainingDataError, match=r"400 rows, fewer than the minimum 500"):
        train(synthetic.training_set.head(400), FAST)


@pytest.mark.usefixtures("no_fitting")
def test_feature_list_mismatch_names_missing_and_extra(synthetic: SyntheticData) -> None:
    frame = synthetic.training_set.drop("mrr", "plan").with_columns(pl.lit(1.0).alias("shoe_size"))
    with pytest.raises(FeatureListError) as error:
        train(frame, FAST)
    message = str(error.value)
    assert "missing features ['mrr', 'plan']" in message
    assert "unexpected features ['shoe_size']" in message


@pytest.mark.usefixtures("no_fitting")
def test_feature_type_mismatch_is_named(synthetic: SyntheticData) -> None:
    frame = synthetic.training_set.with_columns(pl.col("seats").cast(pl.Float64))
    with pytest.raises(FeatureListError, match="seats is Float64, expected Int64"):
        train(frame, FAST)


def test_split_ends_training_label_windows_before_validation(good_model: TrainedModel) -> None:
    split = good_model.split
    assert isinstance(split, TimeSplit)
    # A training row's label window [A, A + 29] ends before validation (and test) starts.
    assert split.train_end + timedelta(days=29) < split.validation_start
    assert split.validation_end < split.test_start
    assert (split.test_end - split.test_start).days + 1 == FAST.test_days
    assert TimeSplit.from_tags(split.to_tags()) == split
    assert good_model.rows["test"] == 200 * FAST.test_days
    strict = TimeSplit.from_dates(
        split.train_start, split.test_end, replace(FAST, test_gap_days=30), 30
    )
    assert strict.validation_end + timedelta(days=29) < strict.test_start


def test_weekly_snapshots_over_a_demo_length_history_train(synthetic: SyntheticData) -> None:
    # The demo's training set: one as-of date a week, first 30 and last 29 days excluded.
    frame = synthetic.training_set
    first = frame["as_of_date"].min()
    weekly = frame.filter((pl.col("as_of_date") - first).dt.total_days() % 7 == 0)
    model = train(weekly, FAST)
    assert all(model.rows[name] >= 200 for name in ("train", "validation", "test"))


def test_early_stopping_keeps_trees_up_to_the_best_iteration(good_model: TrainedModel) -> None:
    assert good_model.booster.num_boosted_rounds() == good_model.best_iteration + 1
    assert good_model.best_iteration < FAST.num_boost_round - 1


def test_same_seed_gives_an_identical_model(
    synthetic: SyntheticData, good_model: TrainedModel
) -> None:
    again = train(synthetic.training_set, FAST)
    assert again.model_json() == good_model.model_json()
    other_seed = train(synthetic.training_set, replace(FAST, seed=7))
    assert other_seed.model_json() != good_model.model_json()


def test_model_json_is_plain_xgboost(good_model: TrainedModel) -> None:
    booster = xgb.Booster()
    booster.load_model(bytearray(good_model.model_json()))
    assert booster.feature_names == ENCODING.names
    assert booster.attr("feature_service") == "churn_v1"


def test_categories_get_vocabulary_codes_and_unknowns_are_missing(
    synthetic: SyntheticData,
) -> None:
    frame = synthetic.training_set.head(3).with_columns(
        pl.Series("plan", [PLANS[2], "platinum", None]),
        pl.Series("mrr", [1.5, None, 2.0]),
    )
    matrix = ENCODING.matrix(frame)
    plan, mrr = ENCODING.names.index("plan"), ENCODING.names.index("mrr")
    assert matrix[0, plan] == 2.0
    assert np.isnan(matrix[1, plan]) and np.isnan(matrix[2, plan])
    assert np.isnan(matrix[1, mrr]) and matrix[2, mrr] == 2.0


def test_short_history_is_a_clear_error(synthetic: SyntheticData) -> None:
    short = synthetic.training_set.filter(
        pl.col("as_of_date") < pl.col("as_of_date").min() + timedelta(days=50)
    )
    with pytest.raises(TrainingDataError, match="to leave training days"):
        train(short, FAST)


def test_gap_shorter_than_the_label_window_is_refused(synthetic: SyntheticData) -> None:
    with pytest.raises(ValueError, match="shorter than the 30-day label window"):
        train(synthetic.training_set, replace(FAST, gap_days=20))
