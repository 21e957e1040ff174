"""The credit evaluation runs the whole production path on a small world and reports every
check of the quality bar (the bar itself needs the full-size world: benchmarks/eval_credit.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.eval_credit import main


@pytest.mark.slow
def test_small_credit_evaluation(tmp_path: Path) -> None:
    report = tmp_path / "credit_eval.md"
    outcome = main(["--small", "--workdir", str(tmp_path / "work"), "--output", str(report)])
    checks = outcome["checks"]
    assert len(checks) == 5
    # Structural checks hold at any size; the AUC comparisons need the full world.
    assert checks["0 monotonicity violations"]
    assert checks["TreeSHAP within 1e-5 of pred_contribs"]
    text = report.read_text()
    assert "| pre-shock, old model |" in text and "| post-shock, retrained |" in text
