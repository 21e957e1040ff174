"""MLflow tracking and model registry: one registered model (and experiment) per use case.

Tracking URI: ``MLFLOW_TRACKING_URI`` when set, else SQLite at
``{SCOREHOUSE_HOME}/mlflow/mlflow.db``; local stores keep artifacts under
``{SCOREHOUSE_HOME}/mlflow/artifacts`` (a server keeps its own; ``SCOREHOUSE_MLFLOW_ARTIFACTS``,
e.g. ``s3://bucket/mlflow``, puts a new experiment's artifacts there). The registry uses the same
URI.

Models are logged in MLflow's own xgboost format (``mlflow.xgboost.log_model``, JSON model file:
no pickle) with a signature and an input example over the encoded features, and the feature
contract, the reason catalogue and the use-case spec beside it, so
``mlflow.pyfunc.load_model("models:/churn@champion")`` and ``mlflow models serve`` work.

A training run becomes, in this order: an MLflow run (params, metrics, tags, artifacts, the
model), marked FINISHED; a version of the use case's registered model; the alias ``candidate``
on that version (lifecycle state ``candidate``, ``models.lifecycle.states``); the run renamed
``<use case>-v<version>-<date>``. The store is pinged before
anything is written; if a step fails afterwards the run is marked FAILED and a version created
by the failing call is deleted, so a failure never leaves a registered version without its alias
and tags.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import mlflow.xgboost
import numpy as np
import pandas as pd
import xgboost as xgb
from mlflow import MlflowClient
from mlflow.entities import Metric, Param
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

from lakehouse.commit import code_version
from lakehouse.config import scorehouse_home
from models.encoding import FeatureEncoding
from models.training.train import TrainedModel, params_for_logging

CANDIDATE = "candidate"
SHADOW = "shadow"
CHAMPION = "champion"
CHALLENGER = CANDIDATE
"""A newly trained version waits for the promotion gate under the ``candidate`` alias (the name
``CHALLENGER`` is kept for callers of the comparison on out-of-time rows)."""
STATE_TAG = "lifecycle_state"
"""The version's current lifecycle state (``models.lifecycle.states``); its history is the
use case's model-decisions table."""
ORPHAN_TAG = "scorehouse.orphan"
"""Tag of a version registered by a run that failed or died before any decision on it (set by
``scorehouse doctor``); promotion refuses such a version."""
MODEL_ARTIFACT = "model"
FEATURES_FILE = "contract/features.json"
INPUT_EXAMPLE_ROWS = 5
_NOT_FOUND = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")
MARKER_SETTLE_S = 1.0


class RegistryError(RuntimeError):
    """An MLflow operation failed; the message says what was (not) left behind."""


class RegistryUnavailableError(RegistryError):
    """The tracking store cannot be reached."""


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI``, or the embedded SQLite store under ``SCOREHOUSE_HOME``."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    folder = scorehouse_home() / "mlflow"
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'mlflow.db'}"


def _local_store(uri: str) -> bool:
    return uri.startswith(("sqlite:", "file:")) or "://" not in uri


@dataclass(frozen=True)
class RunContext:
    """Where a training run's inputs came from, stored as run and model-version tags."""

    training_set_version: int
    feature_service: str
    source_versions: Mapping[str, int] = field(default_factory=dict)
    dagster_run_id: str | None = None
    code_version: str = field(default_factory=code_version)
    use_case: str = ""

    def tags(self) -> dict[str, str]:
        tags = {
            "use_case": self.use_case,
            "training_set_version": str(self.training_set_version),
            "feature_service": self.feature_service,
            "code_version": self.code_version,
            "dagster_run_id": self.dagster_run_id or "",
            "source_versions": json.dumps(dict(self.source_versions), sort_keys=True),
        }
        tags.update({f"source_version.{k}": str(v) for k, v in self.source_versions.items()})
        return tags


@dataclass(frozen=True)
class RegisteredVersion:
    """A registered model version and the run it came from."""

    version: str
    run_id: str
    experiment_id: str


class ModelRegistry:
    """One use case's model: its runs, versions and aliases in one MLflow store."""

    def __init__(self, model_name: str, uri: str | None = None) -> None:
        self.uri = uri or tracking_uri()
        self.model_name = model_name
        self.client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)

    # ------------------------------------------------------------------------------ runs
    def ping(self) -> None:
        """Raise ``RegistryUnavailableError`` unless the tracking store answers."""
        try:
            self.client.search_experiments(max_results=1)
        except (MlflowException, OSError) as exc:
            raise RegistryUnavailableError(
                f"MLflow tracking store {self.uri} is unreachable ({_first_line(exc)}); "
                "nothing was logged or registered"
            ) from exc

    def experiment_id(self) -> str:
        """The use case's experiment (created on first use; local artifacts in the home)."""
        experiment = self.client.get_experiment_by_name(self.model_name)
        if experiment is not None:
            return experiment.experiment_id
        location = os.environ.get("SCOREHOUSE_MLFLOW_ARTIFACTS") or None  # e.g. s3://bucket/mlflow
        if location is None and _local_store(self.uri):
            location = (scorehouse_home() / "mlflow" / "artifacts").as_uri()
        return self.client.create_experiment(self.model_name, artifact_location=location)

    def log_training_run(
        self,
        model: TrainedModel,
        encoding: FeatureEncoding,
        context: RunContext,
        artifacts: Mapping[str, bytes] | None = None,
        *,
        example: pd.DataFrame | None = None,
    ) -> RegisteredVersion:
        """Log ``model`` as a run, register it as a new version and alias it ``candidate``.

        ``artifacts`` maps extra artifact paths (e.g. ``plots/roc.png``) to their bytes; the
        model (MLflow xgboost format) and its feature contract are always logged; ``example``
        (encoded feature rows) becomes the signature's input example. Raises
        ``RegistryUnavailableError`` before writing anything when the store is unreachable,
        ``RegistryError`` when a later step fails (the run is then FAILED and no version is
        left registered).
        """
        self.ping()
        artifacts = artifacts or {}
        tags = {**context.tags(), **model.split.to_tags(), "seed": str(model.params.seed)}
        try:
            experiment = self.experiment_id()
            run_name = f"{self.model_name}-training-{time.strftime('%Y-%m-%d')}"
            run = self.client.create_run(experiment, tags=tags, run_name=run_name)
        except MlflowException as exc:
            raise RegistryError(
                f"could not start an MLflow run in {self.uri} ({_first_line(exc)}); "
                "nothing was registered"
            ) from exc
        run_id = run.info.run_id
        try:
            model_uri = self._log_run(run_id, model, encoding, artifacts, example)
            self.client.set_terminated(run_id, "FINISHED")
            version = self._register(run_id, model_uri, model, tags)
            self.client.update_run(
                run_id, name=f"{self.model_name}-v{version}-{time.strftime('%Y-%m-%d')}"
            )
        except Exception as exc:
            self._quietly(lambda: self.client.set_terminated(run_id, "FAILED"))
            if isinstance(exc, RegistryError):
                raise
            raise RegistryError(
                f"logging or registering run {run_id} in {self.uri} failed "
                f"({_first_line(exc)}); the run is marked FAILED and no version was registered"
            ) from exc
        return RegisteredVersion(version, run_id, experiment)

    def _log_run(
        self,
        run_id: str,
        model: TrainedModel,
        encoding: FeatureEncoding,
        artifacts: Mapping[str, bytes],
        example: pd.DataFrame | None,
    ) -> str:
        """Params, metrics, artifacts and the model; returns the logged model's URI."""
        params = [Param(k, v) for k, v in params_for_logging(model).items()]
        metrics = [Metric(k, v, _now_ms(), 0) for k, v in model.flat_metrics().items()]
        self.client.log_batch(run_id, metrics=metrics, params=params)
        files = {FEATURES_FILE: json.dumps(encoding.spec(), indent=2).encode(), **artifacts}
        with tempfile.TemporaryDirectory() as folder:
            for name, content in files.items():
                path = Path(folder) / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(content)
            self.client.log_artifacts(run_id, folder)
        if example is None:
            example = pd.DataFrame(
                np.zeros((1, len(encoding.names)), dtype=np.float32), columns=encoding.names
            )
        example = example.head(INPUT_EXAMPLE_ROWS)
        signature = infer_signature(example, model.booster.inplace_predict(example.to_numpy()))
        self._use_store()
        with mlflow.start_run(run_id=run_id):
            info = mlflow.xgboost.log_model(
                model.booster,
                name=MODEL_ARTIFACT,
                model_format="json",  # xgboost's own format: loading never unpickles
                signature=signature,
                input_example=example,
                pip_requirements=[f"xgboost=={xgb.__version__}"],
            )
        return str(info.model_uri)

    def _use_store(self) -> None:
        """Point MLflow's fluent API (which the flavors use) at this store."""
        mlflow.set_tracking_uri(self.uri)
        mlflow.set_registry_uri(self.uri)

    def _register(
        self, run_id: str, model_uri: str, model: TrainedModel, tags: Mapping[str, str]
    ) -> str:
        """Create the version with its tags, then alias it; delete it if aliasing fails."""
        try:
            self.client.get_registered_model(self.model_name)
        except MlflowException:
            self.client.create_registered_model(self.model_name)
        version_tags = {
            **tags,
            "run_id": run_id,
            # The rounds prediction uses (the booster is cut at its best iteration already).
            "iteration_range": f"0,{model.booster.num_boosted_rounds()}",
            "test_roc_auc": f"{model.metrics['test']['roc_auc']:.6f}",
            "test_ece": f"{model.metrics['test']['ece']:.6f}",
            "validation_roc_auc": f"{model.metrics['validation']['roc_auc']:.6f}",
            STATE_TAG: CANDIDATE,
        }
        created = self.client.create_model_version(
            self.model_name, model_uri, run_id, tags=version_tags
        )
        try:
            self.client.set_registered_model_alias(self.model_name, CANDIDATE, created.version)
        except Exception as exc:
            deleted = self._quietly(
                lambda: self.client.delete_model_version(self.model_name, created.version)
            )
            if not deleted:
                raise RegistryError(
                    f"version {created.version} of {self.model_name} was created but could not "
                    "be aliased nor deleted; delete it by hand"
                ) from exc
            raise
        return str(created.version)

    def log_metrics(self, run_id: str, metrics: Mapping[str, float]) -> None:
        """Add metrics to a finished run (e.g. the evaluation against the simulator truth)."""
        stamp = _now_ms()
        self.client.log_batch(run_id, metrics=[Metric(k, v, stamp, 0) for k, v in metrics.items()])

    # -------------------------------------------------------------------------- versions
    def version(self, version: str | int) -> ModelVersion:
        """One version of the model; ``RegistryError`` if it does not exist."""
        try:
            return self.client.get_model_version(self.model_name, str(version))
        except MlflowException as exc:
            raise RegistryError(
                f"model {self.model_name} has no version {version} ({_first_line(exc)})"
            ) from exc

    def alias(self, alias: str) -> ModelVersion | None:
        """The version an alias points at, or None when the alias (or the model) is unset."""
        try:
            return self.client.get_model_version_by_alias(self.model_name, alias)
        except MlflowException as exc:
            # Unknown model: RESOURCE_DOES_NOT_EXIST; unknown alias: INVALID_PARAMETER_VALUE.
            if exc.error_code in _NOT_FOUND and "not found" in str(exc):
                return None
            raise

    def change_marker(self) -> tuple[int, ...] | None:
        """A fingerprint of a local SQLite store's files, read without a query: while it stays
        the same, nothing was written to the store. None for a store whose changes only a query
        shows (a tracking server, PostgreSQL), and while a file was modified within the last
        ``MARKER_SETTLE_S`` seconds: file times are coarse, so two writes that close together
        could leave the same fingerprint."""
        if not self.uri.startswith("sqlite:///"):
            return None
        database = Path(self.uri.removeprefix("sqlite:///"))
        marker: list[int] = []
        now = time.time_ns()
        for path in (database, database.with_name(database.name + "-wal")):
            try:
                found = path.stat()
            except FileNotFoundError:
                marker += [-1, -1, -1]
                continue
            if now - found.st_mtime_ns < MARKER_SETTLE_S * 1e9:
                return None
            marker += [found.st_ino, found.st_size, found.st_mtime_ns]
        return tuple(marker)

    def set_alias(self, alias: str, version: str | int) -> None:
        self.client.set_registered_model_alias(self.model_name, alias, str(version))

    def delete_alias(self, alias: str) -> None:
        """Remove an alias (nothing happens when it is not set)."""
        if self.alias(alias) is not None:
            self.client.delete_registered_model_alias(self.model_name, alias)

    def alias_versions(self) -> dict[str, str]:
        """Every alias and its version, read in one call (a consistent view of the aliases)."""
        try:
            model = self.client.get_registered_model(self.model_name)
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return {}
            raise
        return {alias: str(version) for alias, version in model.aliases.items()}

    def tag_version(self, version: str | int, tags: Mapping[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_model_version_tag(self.model_name, str(version), key, value)

    def aliases(self) -> dict[str, list[str]]:
        """Aliases by version number (version search results do not carry them)."""
        try:
            model = self.client.get_registered_model(self.model_name)
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return {}
            raise
        by_version: dict[str, list[str]] = {}
        for alias, version in sorted(model.aliases.items()):
            by_version.setdefault(str(version), []).append(alias)
        return by_version

    def versions(self) -> list[ModelVersion]:
        """Every version, newest first (empty when the model was never registered)."""
        found = self.client.search_model_versions(f"name = '{self.model_name}'")
        return sorted(found, key=lambda v: int(v.version), reverse=True)

    def run_metrics(self, version: str | int) -> dict[str, float]:
        """The metrics logged on a version's training run."""
        run_id = self.version(version).run_id
        if run_id is None:
            raise RegistryError(f"model {self.model_name} v{version} has no training run")
        return dict(self.client.get_run(run_id).data.metrics)

    def load_booster(self, version: str | int) -> xgb.Booster:
        """The version's xgboost model (MLflow's xgboost flavor: a JSON file, no pickle)."""
        self.version(version)  # a clear RegistryError for an unknown version
        self._use_store()
        booster = mlflow.xgboost.load_model(f"models:/{self.model_name}/{version}")
        assert isinstance(booster, xgb.Booster)
        return booster

    @staticmethod
    def _quietly(action: Callable[[], object]) -> bool:
        """Run a best-effort clean-up step; True when it succeeded."""
        try:
            action()
        except Exception:
            return False
        return True


def _now_ms() -> int:
    return int(time.time() * 1000)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
