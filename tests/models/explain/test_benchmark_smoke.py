"""The TreeSHAP benchmark runs end to end at CI size and its kernel rows agree with xgboost.

Only correctness is checked here (rows produced, differences below 1e-5); timings are not.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BENCHMARK = Path(__file__).resolve().parents[3] / "benchmarks" / "bench_treeshap.py"


def _load_benchmark() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_treeshap", BENCHMARK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_small_benchmark_run(tmp_path: Path) -> None:
    report = tmp_path / "treeshap.md"
    results = _load_benchmark().main(["--small", "--skip-compile", "--output", str(report)])
    methods = {r.method for r in results}
    assert {"TreeShapExplainer (ours)", "shap.TreeExplainer", "xgboost pred_contribs"} <= methods
    ours = [r for r in results if r.method == "TreeShapExplainer (ours)"]
    assert {r.threads for r in ours} == {1, 2}
    for result in results:
        assert result.rows == 1_000 and result.seconds > 0
        assert result.max_abs_diff is not None and result.max_abs_diff < 1e-5, result
    text = report.read_text()
    assert "| TreeShapExplainer (ours) | 1 | 1,000 |" in text
    assert "One-time costs" in text
