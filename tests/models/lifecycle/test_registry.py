"""MLflow tracking and registry: a run becomes one aliased version, or nothing at all."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from models.lifecycle import registry as registry_module
from models.lifecycle.registry import (
    CANDIDATE,
    CHAMPION,
    ModelRegistry,
    RegistryError,
    RegistryUnavailableError,
    RunContext,
    tracking_uri,
)
from models.training.train import TrainedModel
from tests.models.synthetic import CHURN, SyntheticData

ENCODING = CHURN.encoding
CONTEXT = RunContext(
    0,
    "churn_v1",
    {"labels.churn": 4, "features.customer_activity": 9},
    "dagster-run-1",
    use_case="churn",
)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_default_store_lives_in_scorehouse_home(scorehouse_home: Path, registry: ModelRegistry):
    assert tracking_uri() == f"sqlite:///{scorehouse_home / 'mlflow' / 'mlflow.db'}"
    assert registry.uri == tracking_uri()


def test_training_run_is_logged_registered_and_aliased(
    registry: ModelRegistry, good_model: TrainedModel, scorehouse_home: Path
) -> None:
    registered = registry.log_training_run(good_model, ENCODING, CONTEXT, {"plots/x.png": b"png"})
    assert registered.version == "1"
    assert str(registry.alias(CANDIDATE).version) == "1"
    run = registry.client.get_run(registered.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["training_set_version"] == "0"
    assert run.data.tags["source_version.labels.churn"] == "4"
    assert run.data.tags["feature_service"] == "churn_v1"
    assert run.data.tags["dagster_run_id"] == "dagster-run-1"
    assert run.data.tags["code_version"]
    for split in ("validation", "test"):
        for metric in ("roc_auc", "pr_auc", "log_loss", "brier", "ks", "lift_at_10pct", "ece"):
            assert f"{split}_{metric}" in run.data.metrics
    assert run.data.params["seed"] == "42"
    artifacts = {a.path for a in registry.client.list_artifacts(registered.run_id, "contract")}
    assert artifacts == {"contract/features.json"}
    assert (scorehouse_home / "mlflow" / "artifacts").is_dir()  # local artifact root
    features = json.loads(
        Path(
            registry.client.download_artifacts(registered.run_id, "contract/features.json")
        ).read_text()
    )
    assert features["features"][0]["name"] == "active_users_7d_mean"
    loaded = registry.load_booster("1")
    assert bytes(loaded.save_raw("json")) == good_model.model_json()
    assert run.info.run_name.startswith("churn-v1-")  # use case, version, date


def test_model_is_logged_in_mlflow_s_own_format(
    registry: ModelRegistry, good_model: TrainedModel, synthetic: SyntheticData
) -> None:
    """``mlflow.pyfunc.load_model("models:/churn@champion")`` scores like the booster, and the
    stored model is xgboost JSON (nothing to unpickle)."""
    import mlflow
    import mlflow.pyfunc
    import pandas as pd

    rows = ENCODING.matrix(synthetic.training_set.head(20))
    example = pd.DataFrame(rows, columns=ENCODING.names)
    registry.log_training_run(good_model, ENCODING, CONTEXT, example=example)
    registry.set_alias(CHAMPION, "1")
    mlflow.set_tracking_uri(registry.uri)
    mlflow.set_registry_uri(registry.uri)
    model = mlflow.pyfunc.load_model("models:/churn@champion")
    assert list(model.metadata.get_input_schema().input_names()) == ENCODING.names
    scores = model.predict(example)
    expected = good_model.booster.inplace_predict(rows)
    assert list(map(float, scores)) == list(map(float, expected))
    source = Path(mlflow.artifacts.download_artifacts("models:/churn/1"))
    assert (source / "model.json").is_file()
    assert not list(source.rglob("*.pkl")) and not list(source.rglob("*.pickle"))


def test_unreachable_tracking_store_is_a_clear_error(
    registry: ModelRegistry, good_model: TrainedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    remote = ModelRegistry("churn")
    with pytest.raises(RegistryUnavailableError, match=r"unreachable.*nothing was logged"):
        remote.log_training_run(good_model, ENCODING, CONTEXT)
    assert registry.versions() == []  # the embedded store was never touched either


def test_failed_aliasing_leaves_no_registered_version(
    registry: ModelRegistry, good_model: TrainedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> None:
        raise ConnectionError("store went away")

    monkeypatch.setattr(registry.client, "set_registered_model_alias", broken)
    with pytest.raises(RegistryError, match="no version was registered"):
        registry.log_training_run(good_model, ENCODING, CONTEXT)
    assert registry.versions() == []
    [run] = registry.client.search_runs([registry.experiment_id()])
    assert run.info.status == "FAILED"


def test_change_marker_moves_with_every_write_and_only_then(
    registry: ModelRegistry, good_model: TrainedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    version = registry.log_training_run(good_model, ENCODING, CONTEXT).version
    assert registry.change_marker() is None  # just written: file times may not tell yet
    monkeypatch.setattr(registry_module, "MARKER_SETTLE_S", 0.0)
    before = registry.change_marker()
    assert before is not None
    registry.alias(CHAMPION)  # a read writes nothing
    registry.alias_versions()
    assert registry.change_marker() == before
    registry.set_alias(CHAMPION, version)
    after = registry.change_marker()
    assert after is not None and after != before
    assert ModelRegistry("churn", uri="http://127.0.0.1:5000").change_marker() is None
