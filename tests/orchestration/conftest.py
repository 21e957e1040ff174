"""Orchestration tests reuse the model tests' synthetic data and migrated MLflow store."""

from tests.models.conftest import mlflow_template, registry, synthetic

__all__ = ["mlflow_template", "registry", "synthetic"]
