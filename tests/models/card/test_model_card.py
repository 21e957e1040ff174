"""The model card of a freshly registered version (nothing scored yet): every section present,
self-contained HTML, plain statements where evidence does not exist yet; the CLI writes both
files and links the card from the version in MLflow."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from models.card.content import auc_interval
from models.card.publish import CARD_TAG
from models.lifecycle.registry import ModelRegistry, RunContext
from models.plots import training_plots
from models.training.train import train
from models.usecase import load_use_cases
from orchestration.cli import main
from tests.models.training.test_monotone import PARAMS, _training_frame

SECTIONS = (
    "purpose", "data", "features", "performance", "calibration", "stability",
    "explainability", "fairness", "limitations", "promotion", "approvals",
)  # fmt: skip


@pytest.fixture
def registered() -> str:
    use_case = load_use_cases()["credit"]
    frame = _training_frame(rows=3000)
    model = train(frame, use_case.design, PARAMS)
    plots = training_plots(model, use_case.encoding, model.split.rows(frame, "validation"))
    context = RunContext(training_set_version=0, feature_service="credit_v1", use_case="credit")
    registry = ModelRegistry(use_case.model_name)
    return registry.log_training_run(model, use_case.encoding, context, plots).version


def test_the_cli_writes_a_self_contained_card_and_links_it(
    registered: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "card"
    assert main(["model", "card", "credit", registered, "--out", str(out)]) == 0
    html = (out / "model_card.html").read_text()
    markdown = (out / "model_card.md").read_text()
    assert "model_card.html" in capsys.readouterr().out
    for section in SECTIONS:
        assert f'<section id="{section}">' in html, section
        assert f'<a id="{section}"></a>' in markdown, section
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert not re.search(r"https?://|//cdn|<script|<link", html)
    images = re.findall(r'<img [^>]*src="([^"]+)"', html)
    assert len(images) >= 2  # the training run's calibration and SHAP summary plots
    assert all(src.startswith("data:image/png;base64,") for src in images)
    # What does not exist yet is said, never invented.
    assert "No matured vintage yet" in html
    assert "No monitored scoring day of this version yet" in html
    assert "No fairness evidence recorded for this version yet" in html
    assert "No approval is recorded in MLflow" in html
    assert "no decision recorded" in html
    version = ModelRegistry("credit").version(registered)
    assert version.tags[CARD_TAG] == f"runs:/{version.run_id}/model_card/model_card.html"


def test_an_approval_appears_on_the_card(registered: str, tmp_path: Path) -> None:
    args = ["model", "approve", "credit", registered, "--role", "model_risk", "--by", "J. Doe"]
    assert main([*args, "--note", "limits as proposed"]) == 0
    assert main(["model", "card", "credit", registered, "--out", str(tmp_path), "--no-mlflow"]) == 0
    html = (tmp_path / "model_card.html").read_text()
    assert "model_risk" in html and "J. Doe" in html and "limits as proposed" in html
    assert CARD_TAG not in (ModelRegistry("credit").version(registered).tags or {})


def test_an_unknown_model_or_version_is_a_clear_error(
    registered: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cards"
    assert main(["model", "card", "loans", "1", "--out", str(out)]) == 1
    assert "no use case has a model named 'loans'" in capsys.readouterr().err
    assert main(["model", "card", "credit", "99", "--out", str(out)]) == 1
    assert "has no version 99" in capsys.readouterr().err
    assert not out.exists()


def test_the_auc_interval_against_hanley_and_mcneil() -> None:
    # Hanley & McNeil (1982), table: A = 0.8, 50 positives, 50 negatives → SE ≈ 0.0442.
    low, high = auc_interval(0.8, 50, 50)
    assert (high - low) / 2 / 1.959964 == pytest.approx(0.0442, abs=5e-4)
    assert all(math.isnan(v) for v in auc_interval(0.8, 0, 10))  # one class: undefined
