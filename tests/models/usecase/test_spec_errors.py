"""A spec that cannot work is refused, naming the spec file, the field and the rule, and
nothing is written anywhere."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lakehouse.ingest.reader import LandingFileError
from models.usecase import SpecError, load_spec, load_use_cases
from models.usecase.data import check_data
from models.usecase.registry import BUILTIN_DIR, home_dir
from orchestration.cli import main
from tests.models.usecase.examples import telco_snapshot

CHURN = yaml.safe_load((BUILTIN_DIR / "churn.yaml").read_text())


def _write(path: Path, spec: dict) -> Path:
    path.write_text(yaml.safe_dump(spec))
    return path


def _churn(**changes: object) -> dict:
    spec = yaml.safe_load(yaml.safe_dump(CHURN))
    spec["reasons"] = str(BUILTIN_DIR / "churn_reasons.csv")
    for dotted, value in changes.items():
        node = spec
        *parents, last = dotted.split("__")
        for key in parents:
            node = node[key]
        node[last] = value
    return spec


def _refused(tmp_path: Path, spec: dict, field: str, rule: str) -> None:
    path = _write(tmp_path / "broken.yaml", spec)
    with pytest.raises(SpecError) as error:
        load_spec(path)
    message = str(error.value)
    assert str(path) in message and field in message and rule in message, message


def test_a_view_naming_a_column_the_builder_does_not_make(tmp_path: Path) -> None:
    views = dict(CHURN["features"]["views"])
    views["customer_support"] = {"features": ["tickets_30d", "shoe_size"]}
    _refused(
        tmp_path,
        _churn(features__views=views),
        "features.views.customer_support.features",
        "'shoe_size' is not a feature the builder computes",
    )


def test_a_builder_reading_a_missing_table(tmp_path: Path) -> None:
    spec = _churn()
    spec["features"]["builder"] = "events"
    spec["features"]["options"] = {"table": "orders", "timestamp": "ts"}
    _refused(tmp_path, spec, "features.options", "'orders' is not a feed of the source")


def test_a_label_horizon_longer_than_its_maturity(tmp_path: Path) -> None:
    _refused(
        tmp_path,
        _churn(label__maturity_days=20),
        "label.maturity_days",
        "maturity_days 20 < horizon_days 30",
    )


def test_a_training_window_shorter_than_one_as_of_step(tmp_path: Path) -> None:
    _refused(
        tmp_path,
        _churn(training={"every_days": 7, "window_days": 3}),
        "training",
        "window_days 3 keeps no more than one as-of date",
    )


def test_a_service_feature_that_no_view_provides(tmp_path: Path) -> None:
    service = {"name": "churn_v1", "features": ["mrr", "lifetime_value"]}
    _refused(
        tmp_path, _churn(features__service=service), "features.service.features", "no view provides"
    )


def test_an_unknown_key_is_a_typo_not_a_default(tmp_path: Path) -> None:
    _refused(tmp_path, _churn(scoring__decision_treshold=0.2), "scoring", "unknown keys")


def test_a_protected_attribute_used_as_a_feature(tmp_path: Path) -> None:
    _refused(
        tmp_path,
        _churn(protected_attributes=["region"]),
        "protected_attributes",
        "['region'] are features",
    )


def test_two_use_cases_claiming_the_same_table(scorehouse_home: Path) -> None:
    spec = _churn(name="churn2")
    spec["features"]["service"] = "churn2_v1"
    spec["label"]["table"] = "churn2"
    home_dir().mkdir(parents=True)
    path = _write(home_dir() / "churn2.yaml", spec)
    with pytest.raises(SpecError) as error:
        load_use_cases()
    message = str(error.value)
    assert str(path) in message and "table features.customer_" in message, message
    assert f"use case 'churn' ({BUILTIN_DIR / 'churn.yaml'})" in message


def test_a_snapshot_whose_target_is_missing_or_constant(
    tmp_path: Path, scorehouse_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = telco_snapshot(tmp_path / "telco.csv", rows=300)
    assert main(["init", "telco", "--kind", "snapshot", "--data", str(data)]) == 0
    use_case = load_use_cases()["telco"]
    constant = tmp_path / "constant.csv"
    lines = data.read_text().splitlines()
    constant.write_text(
        "\n".join([lines[0], *(line.rsplit(",", 1)[0] + ",No" for line in lines[1:])])
    )
    with pytest.raises(
        SpecError, match=r"label\.options\.target: constant.csv: target 'churn' is constant"
    ):
        check_data(use_case, constant)
    missing = tmp_path / "missing.csv"
    missing.write_text("\n".join(line.rsplit(",", 1)[0] for line in lines))
    capsys.readouterr()
    assert main(["spec", "check", "telco", "--data", str(missing)]) == 1
    assert "missing columns ['churn']" in capsys.readouterr().err
    assert not (scorehouse_home / "lakehouse").exists()  # nothing written
    assert not (scorehouse_home / "landing").exists()


def test_own_feeds_bound_only_what_the_spec_declares(tmp_path: Path, scorehouse_home: Path) -> None:
    """Your numbers may be negative (refunds, balances) unless the spec says otherwise; init
    declares ``[0, null]`` for columns the sample never has negative, and the rule holds."""
    data = telco_snapshot(tmp_path / "telco.csv", rows=300)
    assert main(["init", "telco", "--kind", "snapshot", "--data", str(data)]) == 0
    spec_file = home_dir() / "telco.yaml"
    spec = yaml.safe_load(spec_file.read_text())
    feed = spec["source"]["feeds"]["telco_records"]
    assert feed["bounds"] == {
        c: [0, None] for c in ("tenure_months", "monthly_charges", "support_calls")
    }
    lines = data.read_text().splitlines()
    negative = tmp_path / "negative.csv"
    first = lines[1].split(",")
    first[2] = "-5.0"  # monthly_charges
    negative.write_text("\n".join([lines[0], ",".join(first), *lines[2:]]))
    with pytest.raises(
        LandingFileError, match=r"negative.csv rejected: column .monthly_charges.: 1 negative rows"
    ):
        check_data(load_use_cases()["telco"], negative)
    del feed["bounds"]["monthly_charges"]
    _write(spec_file, spec)
    assert check_data(load_use_cases()["telco"], negative) == 300
    feed["bounds"] = {"contract": [0, 1]}
    _refused(tmp_path, spec, "source.feeds.telco_records.bounds.contract", "not a numeric column")
