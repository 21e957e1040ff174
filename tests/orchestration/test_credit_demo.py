"""The credit demo end to end, as ``scorehouse demo --use-case credit`` runs it (a subprocess:
the world's settings are read from the environment when the code location loads).

The shock shows as input drift with healthy pipeline checks; the drift retrain, trained on the
recent window, is admitted into shadow, scored beside the champion and promoted on out-of-time
evidence (no 12-month outcome matures within a shadow period) where the old champion's ranking
has fallen; the champion's matured vintages of the downturn default far above their PDs; the
new champion has its model card; every scored loan has an online score, every adverse decision
its reasons, after every run.
"""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from tests.orchestration.test_closed_loop import _demo, _launched

pytestmark = [pytest.mark.slow, pytest.mark.deep]  # about 15 minutes: make test-deep
SHOCK = date(2024, 6, 24)  # day 540 of the demo world from 2023-01-01


@pytest.mark.timeout(3600)
def test_the_credit_demo_tells_the_whole_story(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    out = _demo(home, "--use-case", "credit")
    monkeypatch.setenv("SCOREHOUSE_HOME", str(home))
    from models.lifecycle.gate import read_state
    from models.lifecycle.registry import ModelRegistry
    from models.usecase import load_use_cases

    use_cases = load_use_cases()
    credit, lake = use_cases["credit"], use_cases.lakehouse()
    verdicts = lake.read(credit.tables.monitoring.verdicts).sort("as_of_date")
    # Healthy before the shock, a population change after it, never a pipeline fault.
    assert set(verdicts.filter(pl.col("as_of_date") < SHOCK)["verdict"]) == {"healthy"}
    assert verdicts.filter(pl.col("verdict") == "pipeline_fault").is_empty()
    drifted = verdicts.filter(pl.col("verdict") == "population_drift")
    assert drifted.height and drifted["as_of_date"].min() > SHOCK
    # The drift candidate: shadow, scored beside the champion, promoted on out-of-time rows.
    decisions = lake.read(credit.tables.decisions).sort("decided_at")
    drift = decisions.filter(pl.col("trigger") == "drift")
    assert list(drift["decision"][:2]) == ["shadow", "promote"]
    promoted = drift.row(1, named=True)
    evidence = json.loads(promoted["evidence"])
    assert evidence["kind"] == "out-of-time"
    assert evidence["candidate"]["roc_auc"] >= evidence["champion"]["roc_auc"] + 0.005
    assert "decided on out-of-time rows, as the policy allows" in evidence["note"]
    shadow = lake.read(credit.tables.scoring.shadow_predictions)
    assert promoted["challenger_version"] in set(shadow["model_version"])
    state = read_state(ModelRegistry(credit.model_name))
    assert state.champion == promoted["challenger_version"]
    # A year on, the old champion's vintages of the downturn default far above their PDs.
    vintages = lake.read(credit.tables.monitoring.performance).filter(
        pl.col("model_alias") == "champion"
    )
    assert vintages.height >= 2 and vintages["ece"].min() > 0.05
    assert re.search(r"concept change: .* → promote", out)
    # Apps: a score for every scored loan, reasons for every adverse decision, at every step.
    pattern = r"app lookups: (\d+) loans .*: (\d+) without a score; .* (\d+) of them"
    lookups = re.findall(pattern, out)
    assert len(lookups) >= 15
    assert all(int(n) > 1000 and m == "0" and r == "0" for n, m, r in lookups)
    assert "0 differ from the recorded champion scores" in out
    card = home / "reports" / "model_cards" / "credit" / f"v{state.champion}" / "model_card.html"
    assert card.is_file() and "promot" in card.read_text()
    assert _launched(home, "credit_weekly_retrain", "credit_monitoring_retrain") >= 1
