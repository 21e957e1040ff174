"""``scorehouse model list`` / ``rollback`` through an argparse parser like lakehouse/cli.py's."""

from __future__ import annotations

import argparse

import pytest

from lakehouse.model_cli import add_model_commands
from lakehouse.storage import Lakehouse
from models.registry import CHAMPION, ModelRegistry, RunContext
from models.training import TrainedModel


def _main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="scorehouse")
    add_model_commands(parser.add_subparsers(required=True))
    args = parser.parse_args(argv)
    return args.run(args)


def test_list_and_rollback(
    registry: ModelRegistry,
    lake: Lakehouse,
    good_model: TrainedModel,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert _main(["model", "list"]) == 0
    assert "no registered versions" in capsys.readouterr().out
    for _ in range(2):
        registry.log_training_run(good_model, RunContext(0, {}, None))
    assert _main(["model", "rollback", "1", "--reason", "bad week"]) == 0
    assert "champion is now v1" in capsys.readouterr().out
    assert str(registry.alias(CHAMPION).version) == "1"
    assert _main(["model", "list"]) == 0
    listing = capsys.readouterr().out
    assert "champion" in listing and "challenger" in listing and "rollback" in listing
    assert _main(["model", "rollback", "7"]) == 1
    assert "no version 7" in capsys.readouterr().err
