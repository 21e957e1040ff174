"""The churn weekly retrain job in-process: a clean training set trains and registers a candidate
(nothing is promoted in the training run; the promotion gate promotes the first model); a
training set failing its blocking GX check stops training (no version, champion unchanged)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import polars as pl
import pytest
from dagster import (
    AssetCheckEvaluation,
    AssetCheckKey,
    AssetKey,
    AssetSelection,
    DagsterInstance,
    Definitions,
    ExecuteInProcessResult,
    MaterializeResult,
    asset,
    define_asset_job,
)

from lakehouse.commit import CommitInfo
from lakehouse.config import landing_dir
from lakehouse.sources.saas.contract import truth_path
from models.lifecycle.registry import CANDIDATE, CHAMPION, ModelRegistry
from models.usecase import load_use_cases, project_lakehouse
from orchestration.resources import LakehouseResource, LandingResource, ModelRegistryResource
from orchestration.training.assets import training_assets
from orchestration.training.checks import quality_checks
from orchestration.training.gate import gate_asset
from orchestration.usecase import build_definitions
from tests.models.conftest import FAST
from tests.models.synthetic import CHURN, SyntheticData

TRAINING_SET = AssetKey(CHURN.tables.training_set.split("."))
CRITICAL_CHECK = AssetCheckKey(TRAINING_SET, "gx_critical")
CHECKS = quality_checks(CHURN)


def _job_result(frame: pl.DataFrame) -> ExecuteInProcessResult:
    """Run ``weekly_retrain`` with a stand-in training-set asset that writes ``frame``."""

    @asset(key=TRAINING_SET)
    def training_set(context) -> MaterializeResult:  # the real asset in production
        project_lakehouse().replace(
            CHURN.tables.training_set, frame, commit=CommitInfo(run_id=context.run_id)
        )
        return MaterializeResult()

    defs = Definitions(
        assets=[training_set, *training_assets(CHURN)],
        asset_checks=[CHECKS[CHURN.tables.training_set]],
        jobs=[define_asset_job("churn_weekly_retrain", AssetSelection.all())],
        resources={
            "lakehouse": LakehouseResource(),
            "landing": LandingResource(),
            "model_registry": ModelRegistryResource(),
        },
    )
    return defs.resolve_job_def("churn_weekly_retrain").execute_in_process(
        run_config={"ops": {"ml__churn_model": {"config": asdict(FAST)}}},
        instance=DagsterInstance.ephemeral(),
        raise_on_error=False,
        tags={"scorehouse/trigger": "drift", "scorehouse/as_of": "2025-04-30"},
    )


def _gate() -> ExecuteInProcessResult:
    """The promotion gate job, as its schedule or sensor would launch it."""
    defs = Definitions(
        assets=[gate_asset(CHURN, deps=[])],
        jobs=[define_asset_job("churn_promotion_gate", AssetSelection.all())],
        resources={"lakehouse": LakehouseResource(), "model_registry": ModelRegistryResource()},
    )
    return defs.resolve_job_def("churn_promotion_gate").execute_in_process(
        instance=DagsterInstance.ephemeral()
    )


def _check(result: ExecuteInProcessResult) -> AssetCheckEvaluation:
    [evaluation] = [
        e for e in result.get_asset_check_evaluations() if e.asset_check_key == CRITICAL_CHECK
    ]
    return evaluation


def _metadata(result: ExecuteInProcessResult, key: AssetKey) -> dict:
    [event] = result.asset_materializations_for_node("__".join(key.path))
    return {k: v.value for k, v in event.metadata.items()}


@pytest.fixture
def with_truth(synthetic: SyntheticData) -> Path:
    """The simulator truth files of the synthetic rows, where the landing folder keeps them."""
    for (day,), rows in synthetic.truth.group_by("as_of_date"):
        path = truth_path(landing_dir(), day)
        path.parent.mkdir(parents=True, exist_ok=True)
        rows.with_columns(pl.lit(0.0).alias("daily_hazard")).write_parquet(path)
    return landing_dir()


@pytest.mark.usefixtures("with_truth")
def test_retrain_promotes_then_blocks_a_bad_training_set(
    registry: ModelRegistry, synthetic: SyntheticData
) -> None:
    project_lakehouse().merge("silver.customers", synthetic.customers)
    good = _job_result(synthetic.training_set)
    assert good.success
    assert _check(good).passed
    assert registry.alias(CHAMPION) is None  # the training run only produces a candidate
    assert str(registry.alias(CANDIDATE).version) == "1"
    tags = registry.version("1").tags
    assert (tags["lifecycle_state"], tags["trigger"], tags["trigger_as_of"]) == (
        "candidate",
        "drift",
        "2025-04-30",
    )
    model = _metadata(good, AssetKey(["ml", "churn_model"]))
    assert model["model_version"] == "1" and "data:image/png;base64," in model["plots"]
    evaluation = _metadata(good, AssetKey(["ml", "churn_model_evaluation"]))
    assert "| metric |" in evaluation["comparison"]
    assert evaluation["truth_rows_matched"] == evaluation["rows"]
    assert 0.5 < evaluation["truth_model_roc_auc"] <= evaluation["truth_truth_roc_auc"] + 0.05
    run = registry.client.get_run(registry.version("1").run_id)
    assert run.data.metrics["oot_truth_truth_roc_auc"] == evaluation["truth_truth_roc_auc"]
    assert {a.path for a in registry.client.list_artifacts(run.info.run_id, "plots")} == {
        "plots/roc.png",
        "plots/pr.png",
        "plots/calibration.png",
        "plots/shap_summary.png",
    }
    gate = _gate()
    decision = _metadata(gate, AssetKey(["ml", "churn_promotion_gate"]))
    assert decision["champion_version"] == "1" and "| promote |" in decision["decisions"]
    assert str(registry.alias(CHAMPION).version) == "1"
    [row] = project_lakehouse().read(CHURN.tables.decisions).to_dicts()
    assert (row["from_state"], row["to_state"], row["trigger"]) == (
        "candidate",
        "champion",
        "drift",
    )

    leaky = synthetic.training_set.with_columns(pl.col("tenure_days") + 1)
    bad = _job_result(leaky)
    assert not bad.success
    check = _check(bad)
    assert not check.passed
    failures = check.metadata["failures"].value
    assert any(f["column"] == "_leakage_margin_days" for f in failures)
    assert Path(check.metadata["data_docs"].value).is_file()
    assert not bad.asset_materializations_for_node("ml__churn_model")  # training never ran
    assert [str(v.version) for v in registry.versions()] == ["1"]
    assert str(registry.alias(CHAMPION).version) == "1"


def test_unreachable_mlflow_fails_the_training_asset(
    registry: ModelRegistry, synthetic: SyntheticData, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestration.training import assets

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("trained although the store is unreachable")

    monkeypatch.setattr(assets, "train", refuse)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    project_lakehouse().merge("silver.customers", synthetic.customers)
    result = _job_result(synthetic.training_set)
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    assert "is unreachable" in failure.event_specific_data.error.to_string()
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert registry.versions() == []


def test_job_schedule_and_check_definitions() -> None:
    defs = build_definitions(load_use_cases())
    schedule = defs.resolve_schedule_def("churn_weekly_retrain_schedule")
    assert schedule.cron_schedule == "0 3 * * 1"
    assert schedule.default_status.value == "STOPPED"
    specs = {spec.key: spec for check in CHECKS.values() for spec in check.check_specs}
    assert specs[CRITICAL_CHECK].blocking
    assert not specs[AssetCheckKey(TRAINING_SET, "gx_warning")].blocking
    for table in ("customers", "usage_daily", "payments", "tickets"):
        assert specs[AssetCheckKey(AssetKey(["silver", table]), "gx_critical")].blocking
