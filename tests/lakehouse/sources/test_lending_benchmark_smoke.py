"""The lending simulator benchmark runs end to end at its --small size and writes its table."""

from __future__ import annotations

from pathlib import Path

from benchmarks.bench_lending import main


def test_small_lending_benchmark(tmp_path: Path) -> None:
    report = tmp_path / "lending.md"
    results = main(["--small", "--output", str(report)])
    assert set(results) == {"simulate (files)", "state only", "saas simulate"}
    assert all(t.cpu_seconds > 0 for t in results.values())
    assert "| simulate (files) |" in report.read_text()
