"""The closed loop end to end, as ``scorehouse demo`` runs it (a subprocess: the world's
settings are read from the environment when the code location loads).

* Concept and covariate shift (the demo's world): the usage change triggers a drift candidate
  that the gate admits into shadow and rejects on paired matured outcomes (the champion copes);
  the concept shift shows as a decay of matured performance by vintage (label coverage
  recorded), deferred until a model trained then can see it, then a performance candidate,
  shadow scoring, and a promotion with a significant ROC-AUC gain.
* Covariate shift only: the drift candidate is rejected and the champion stays.

Both check the runs were runs of their jobs, launched by the sensors, and that the online
store holds the recorded champion score of every scored customer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / ".venv" / "bin" / "scorehouse"


def _demo(home: Path, *args: str, **env: str) -> str:
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SCOREHOUSE_")},
        "SCOREHOUSE_HOME": str(home),
        "DAGSTER_HOME": str(home / "dagster"),
        **env,
    }
    command = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "orchestration.cli"]
    done = subprocess.run(
        [*command, "demo", *args], env=environment, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return done.stdout


def _tables(home: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, pl.DataFrame]:
    monkeypatch.setenv("SCOREHOUSE_HOME", str(home))
    from models.usecase import load_use_cases

    use_cases = load_use_cases()
    use_case, lake = use_cases["churn"], use_cases.lakehouse()
    monitoring = use_case.tables.monitoring
    return {
        "decisions": lake.read(use_case.tables.decisions).sort("decided_at"),
        "performance": lake.read(monitoring.performance),
        "verdicts": lake.read(monitoring.verdicts).sort("as_of_date", "computed_at"),
    }


def _moves(decisions: pl.DataFrame, trigger: str) -> list[tuple[str, str, str]]:
    rows = decisions.filter(pl.col("trigger") == trigger)
    return list(zip(rows["challenger_version"], rows["decision"], rows["to_state"], strict=True))


def _launched(home: Path, job: str, sensor: str) -> int:
    from dagster import DagsterInstance, RunsFilter

    instance = DagsterInstance.from_config(str(home / "dagster"))
    runs = instance.get_runs(filters=RunsFilter(job_name=job, tags={"dagster/sensor_name": sensor}))
    return len(runs)


def _shadow_evidence(row: dict) -> dict:
    evidence = json.loads(row["evidence"])
    assert evidence["kind"] == "matured shadow-scoring"
    return evidence


@pytest.mark.deep  # the whole demo (make demo runs it too): make test-deep, not make test
@pytest.mark.timeout(2400)  # the whole demo: about 6 minutes on 2 idle cores
def test_concept_shift_is_promoted_and_covariate_shift_rejected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    check_concept_world(home, _demo(home), monkeypatch)


def check_concept_world(home: Path, out: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo world's outcomes (see the module docstring), from its home and its output."""
    tables = _tables(home, monkeypatch)
    decisions = tables["decisions"]
    # The drift candidate: admitted, then rejected on its matured paired outcomes.
    drift = _moves(decisions, "drift")
    assert [(d, s) for _, d, s in drift[:2]] == [("shadow", "shadow"), ("reject", "rejected")]
    rejected = decisions.filter(
        (pl.col("trigger") == "drift") & (pl.col("decision") == "reject")
    ).row(0, named=True)
    evidence = _shadow_evidence(rejected)
    assert evidence["rows"] >= 3000 and evidence["days_in_shadow"] >= 28
    # The decay: seen on matured vintages with their coverage, deferred, then triggered.
    verdicts = tables["verdicts"]
    assert verdicts.filter(pl.col("deferred").list.len() > 0).height > 0
    triggered = verdicts.filter(pl.col("triggers").list.contains("performance"))
    assert triggered.height > 0
    champion = tables["performance"].filter(pl.col("model_alias") == "champion")
    assert champion.height >= 10 and champion["label_coverage"].min() > 0.8
    first = champion.sort("as_of_date").row(0, named=True)
    newest_decayed = champion.filter(pl.col("as_of_date") < triggered["as_of_date"].min()).sort(
        "as_of_date"
    )
    assert newest_decayed["roc_auc"].tail(2).mean() < first["training_roc_auc"] - 0.03
    # The performance candidate: shadow, then promoted with a significant gain.
    performance = _moves(decisions, "performance")
    assert [(d, s) for _, d, s in performance[:2]] == [
        ("shadow", "shadow"),
        ("promote", "champion"),
    ]
    promoted = decisions.filter(pl.col("decision") == "promote").row(-1, named=True)
    gain = _shadow_evidence(promoted)["difference"]["roc_auc"]
    assert gain["low"] > 0 and gain["estimate"] >= 0.005
    assert _launched(home, "churn_weekly_retrain", "churn_monitoring_retrain") >= 2
    assert _launched(home, "churn_promotion_gate", "churn_promotion_gate_sensor") >= 3
    assert "0 differ from the recorded champion scores" in out
    assert (home / "reports" / "monitoring" / "churn" / "dashboard.html").is_file()


@pytest.mark.timeout(1800)
def test_a_covariate_shift_alone_is_rejected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    _demo(home, "--days", "182", SCOREHOUSE_SIM_CONCEPT_DAY="")
    decisions = _tables(home, monkeypatch)["decisions"]
    assert [(d, s) for _, d, s in _moves(decisions, "drift")[:2]] == [
        ("shadow", "shadow"),
        ("reject", "rejected"),
    ]
    assert decisions.filter(pl.col("decision") == "promote").height == 1  # the first model only
