"""The built-in credit spec loads beside churn, declares what credit policy requires, and the
loader and registry refuse what would break it."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml

from lakehouse.ingest.lending import LENDING
from lakehouse.sources.lending.contract import GRADES, PURPOSES
from models.usecase import SpecError, load_use_cases, parse_spec
from models.usecase.registry import BUILTIN_DIR

SPEC = BUILTIN_DIR / "credit.yaml"


def _raw() -> dict:
    return yaml.safe_load(SPEC.read_text())


def test_credit_loads_beside_churn_without_sharing_a_table() -> None:
    use_cases = load_use_cases()
    assert {"churn", "credit"} <= set(use_cases)
    credit, churn = use_cases["credit"], use_cases["churn"]
    credit_tables = {s.name for s in credit.table_specs()} | {s.name for s in LENDING.tables()}
    churn_tables = {s.name for s in churn.table_specs()} | {
        s.name for s in churn.source.tables.tables()
    }
    assert not credit_tables & churn_tables
    assert credit_tables | churn_tables <= {spec.name for spec in use_cases.catalog}
    assert credit.features.service != churn.features.service
    assert credit.entity.name != churn.entity.name


def test_the_spec_s_declarations() -> None:
    credit = load_use_cases()["credit"]
    assert credit.source.name == "lending" and credit.source.simulator == "lending"
    assert (credit.entity.name, credit.entity.join_key) == ("loan", "loan_id")
    assert credit.features.service == "credit_v1"
    assert credit.features.population_table == "features.loan_terms"
    assert [v.name for v in credit.features.views] == [
        "loan_payment_history",
        "loan_bureau",
        "loan_terms",
    ]
    assert credit.features.features["amount_to_income"] == pl.Float64()
    assert credit.encoding.categories == {"grade": GRADES, "purpose": PURPOSES}
    label = credit.label.definition
    assert (label.table, label.column, label.horizon_days, label.maturity_days) == (
        "labels.credit",
        "defaulted_12m",
        365,
        365,
    )
    assert credit.design.split == "holdout" and credit.design.label_horizon_days == 365
    assert credit.evaluation is not None
    assert (credit.evaluation.truth, credit.evaluation.column) == ("credit_truth", "pd_12m")
    assert credit.protected_attributes == ("age_band", "sex")
    assert credit.tables.scoring.predictions == "ml.credit_predictions"
    assert credit.tables.training_set == "ml.credit_training_set"


def test_monotone_constraints_follow_credit_policy() -> None:
    constraints = load_use_cases()["credit"].design.monotone_constraints
    worse = [
        "current_dpd",
        *(f"max_dpd_{m}m" for m in (3, 6, 12)),
        *(f"missed_payments_{m}m" for m in (3, 6, 12)),
        "revolving_utilization",
        "debt_to_income",
        "inquiries_6m",
        "delinquencies_2y",
    ]
    assert {f: constraints[f] for f in worse} == dict.fromkeys(worse, 1)
    assert constraints["bureau_score"] == -1


def test_risk_grades_and_the_review_decision() -> None:
    scoring = load_use_cases()["credit"].scoring
    assert list(scoring.bands) == ["A", "B", "C", "D", "E"]
    pd = np.array([0.0, 0.005, 0.03, 0.07, 0.15, 0.19, 0.2, 0.6, 1.0])
    bounds = list(scoring.bands.values())
    assert scoring.bands_of(pd).tolist() == ["A", "A", "B", "C", "D", "D", "E", "E", "E"]
    assert scoring.bands_of(np.array(bounds)).tolist() == list(scoring.bands)  # bound reached
    assert scoring.decisions_of(pd).tolist() == ["monitor"] * 6 + ["review"] * 3


def test_every_feature_has_a_reviewed_adverse_action_reason() -> None:
    credit = load_use_cases()["credit"]
    assert set(credit.reasons) == set(credit.features.service_features)
    codes = [reason.code for reason in credit.reasons.values()]
    assert len(set(codes)) == len(codes)
    assert credit.reasons["current_dpd"].text == "Serious delinquency"
    assert credit.reasons["revolving_utilization"].text == (
        "Proportion of balances to credit limits is too high"
    )
    assert credit.reasons["debt_to_income"].text == (
        "Debt obligations are too high relative to income"
    )


def test_a_protected_attribute_can_never_be_a_feature_or_a_reason() -> None:
    raw = _raw()
    raw["protected_attributes"] = ["age_band", "debt_to_income"]
    with pytest.raises(SpecError, match=r"\['debt_to_income'\] are features"):
        parse_spec(raw, SPEC)
    raw = _raw()
    raw["reasons"] = {
        feature: {"code": f"C{i}", "text": "t"}
        for i, feature in enumerate([*load_use_cases()["credit"].reasons, "sex"])
    }
    with pytest.raises(SpecError, match=r"reasons name protected attributes \['sex'\]"):
        parse_spec(raw, SPEC)


def test_the_loader_refuses_breaking_changes() -> None:
    raw = _raw()
    raw["model"]["monotone_constraints"]["interest_rate"] = 2
    with pytest.raises(SpecError, match="must be \\+1 or -1"):
        parse_spec(raw, SPEC)
    raw = _raw()
    raw["features"]["views"]["loan_terms"]["features"].append("age_band")
    with pytest.raises(SpecError, match="'age_band' is not a feature the builder computes"):
        parse_spec(raw, SPEC)
    raw = _raw()
    raw["features"]["builder"] = "saas_churn"
    with pytest.raises(SpecError, match="builder 'saas_churn' reads the saas source"):
        parse_spec(raw, SPEC)


def test_the_registry_refuses_a_spec_that_collides_with_credit(
    scorehouse_home: Path,
) -> None:
    own = scorehouse_home / "usecases"
    own.mkdir(parents=True)
    raw = copy.deepcopy(_raw())
    raw["name"] = "credit_copy"
    raw["reasons"] = str(BUILTIN_DIR / "credit_reasons.csv")
    (own / "credit_copy.yaml").write_text(yaml.safe_dump(raw))
    claimed = (
        r"table features\.loan_\w+ is claimed by use case 'credit_copy' \(.*credit_copy\.yaml\) "
        r"and by use case 'credit' \(.*credit\.yaml\)"
    )
    with pytest.raises(SpecError, match=claimed):
        load_use_cases()
    raw["features"]["views"] = {
        f"copy_{name}": view for name, view in raw["features"]["views"].items()
    }
    raw["features"]["population"] = "copy_loan_terms"
    raw["label"]["table"] = "credit_copy"
    for ratio in raw["features"]["ratios"].values():
        ratio["view"] = f"copy_{ratio['view']}"
    (own / "credit_copy.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(SpecError, match="feature service 'credit_v1' is also defined"):
        load_use_cases()


def test_only_the_named_use_cases_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCOREHOUSE_USE_CASES", "credit")
    assert list(load_use_cases()) == ["credit"]
