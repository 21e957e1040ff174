"""``scorehouse model list`` / ``rollback`` through the entry point's parser."""

from __future__ import annotations

import pytest

from lakehouse.storage import Lakehouse
from models.lifecycle.registry import CHAMPION, ModelRegistry, RunContext
from models.training.train import TrainedModel
from orchestration.cli import main
from tests.models.synthetic import CHURN


def test_list_and_rollback(
    registry: ModelRegistry,
    lake: Lakehouse,
    good_model: TrainedModel,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["model", "list"]) == 1  # churn and credit are both built in
    assert "name a use case with --use-case (one of ['churn', 'credit'])" in capsys.readouterr().err
    assert main(["model", "list", "--use-case", "churn"]) == 0
    assert "no registered versions" in capsys.readouterr().out
    context = RunContext(0, "churn_v1", {}, None, use_case="churn")
    for _ in range(2):
        registry.log_training_run(good_model, CHURN.encoding, context)
    assert main(["model", "rollback", "1", "--use-case", "churn", "--reason", "bad week"]) == 0
    assert "champion is now v1" in capsys.readouterr().out
    assert str(registry.alias(CHAMPION).version) == "1"
    assert main(["model", "list", "--use-case", "churn"]) == 0
    listing = capsys.readouterr().out
    assert "champion" in listing and "candidate" in listing and "rollback" in listing
    assert main(["model", "rollback", "7", "--use-case", "churn"]) == 1
    assert "no version 7" in capsys.readouterr().err
    assert main(["model", "list", "--use-case", "nope"]) == 1
    assert "unknown use case 'nope'" in capsys.readouterr().err
