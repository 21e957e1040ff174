"""The training benchmark runs end to end at its --small size and writes its markdown table."""

from __future__ import annotations

from pathlib import Path

from benchmarks.bench_training import main


def test_small_training_benchmark(tmp_path: Path) -> None:
    report = tmp_path / "training.md"
    [result] = main(["--small", "--output", str(report)])
    assert result.rows == 20_000 and result.best_iteration > 0
    assert result.ours.seconds > 0 and result.raw.seconds > 0
    assert "| 20,000 |" in report.read_text()
