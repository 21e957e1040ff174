"""Fixtures of the training tests: synthetic data, fast parameters, a ready MLflow store.

A fresh MLflow SQLite store runs its schema migrations (several seconds), so one migrated
database is made per session and copied into each test's ``SCOREHOUSE_HOME``, where the
registry's default tracking URI finds it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lakehouse.storage import Lakehouse
from models.lifecycle.registry import ModelRegistry
from models.training.params import TrainingParams
from models.training.train import TrainedModel, train
from models.usecase import project_lakehouse
from tests.models.synthetic import CHURN, SyntheticData, synthetic_training_set

FAST = TrainingParams(nthread=1, num_boost_round=200, min_rows=500)
WEAK = TrainingParams(nthread=1, num_boost_round=1, max_depth=1, min_rows=500)


@pytest.fixture(scope="session")
def synthetic() -> SyntheticData:
    return synthetic_training_set(customers=200, days=120, seed=0)


@pytest.fixture(scope="session")
def good_model(synthetic: SyntheticData) -> TrainedModel:
    return train(synthetic.training_set, CHURN.design, FAST)


@pytest.fixture(scope="session")
def weak_model(synthetic: SyntheticData) -> TrainedModel:
    return train(synthetic.training_set, CHURN.design, WEAK)


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    ModelRegistry("churn", f"sqlite:///{path}").client.search_registered_models()  # migrations
    return path


@pytest.fixture
def registry(
    scorehouse_home: Path, mlflow_template: Path, monkeypatch: pytest.MonkeyPatch
) -> ModelRegistry:
    """The default (embedded) registry of this test's SCOREHOUSE_HOME, already migrated."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (scorehouse_home / "mlflow").mkdir(parents=True, exist_ok=True)
    shutil.copy(mlflow_template, scorehouse_home / "mlflow" / "mlflow.db")
    return ModelRegistry(CHURN.model_name)


@pytest.fixture
def lake(synthetic: SyntheticData) -> Lakehouse:
    """This test's lakehouse holding the synthetic training set (version 0) and customers."""
    lake = project_lakehouse()
    lake.append(CHURN.tables.training_set, synthetic.training_set)
    lake.merge("silver.customers", synthetic.customers)
    return lake
