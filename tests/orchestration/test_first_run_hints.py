"""First runs that cannot work say what to do: set the start date, materialize the registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.usecase import load_use_cases
from orchestration.cli import main
from orchestration.features.feast_assets import training_set
from orchestration.resources import FeatureStoreResource
from orchestration.usecase import build_definitions
from tests.models.usecase.examples import telco_snapshot
from tests.world import churn, churn_feature_assets, ingest_assets, run_days


def test_a_landing_day_before_the_start_date_names_the_setting_and_the_day(
    scorehouse_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = scorehouse_home / "landing" / "customers" / "date=1997-01-01" / "part-00000.csv"
    old.parent.mkdir(parents=True)
    old.write_text("customer_id\nC1\n")
    assert main(["run", "churn", "ingest_and_features", "--date", "1997-01-01"]) == 1
    err = capsys.readouterr().err
    assert "day 1997-01-01 is before the first daily partition 2025-01-01" in err, err
    assert "earliest landing day found is 1997-01-01" in err and "SCOREHOUSE_START_DATE" in err
    assert "Traceback" not in err


def test_landing_a_delivery_no_partition_covers_is_refused(
    tmp_path: Path, scorehouse_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = telco_snapshot(tmp_path / "telco.csv", rows=200)
    init = ["init", "telco", "--kind", "snapshot", "--data", str(data)]
    assert main([*init, "--start-date", "2026-01-01"]) == 0
    capsys.readouterr()
    assert main(["land", "telco", str(data), "--date", "2025-12-31"]) == 1
    err = capsys.readouterr().err
    assert "delivery day 2025-12-31 is before the first daily partition 2026-01-01" in err, err
    assert not (scorehouse_home / "landing").exists()


def test_training_before_the_registry_says_which_asset_to_materialize(tmp_path: Path) -> None:
    assets = [*ingest_assets(), *churn_feature_assets(), training_set(churn())]
    store = FeatureStoreResource(lakehouse_uri=str(tmp_path / "lake"))
    result = run_days(tmp_path, 3, assets=assets, extra_resources={"feature_store": store})
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    message = str(failure.step_failure_data.error.cause)  # type: ignore[union-attr]
    assert "feature service 'churn_v1' is not in the Feast registry yet" in message, message
    assert "materialize the feast/registry asset first" in message


def test_the_retrain_job_registers_the_features_it_trains_on() -> None:
    defs = build_definitions(load_use_cases())
    selected = defs.resolve_job_def("churn_weekly_retrain").asset_layer.selected_asset_keys
    assert {k.to_user_string() for k in selected} >= {"feast/registry", "ml/churn_training_set"}
