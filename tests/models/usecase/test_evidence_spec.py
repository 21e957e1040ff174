"""The spec's ``explanations`` and ``fairness`` sections: credit declares both, churn neither,
and the loader refuses what cannot be evidence (naming the field and the rule)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from models.usecase import SpecError, load_use_cases, parse_spec
from models.usecase.registry import BUILTIN_DIR

SPEC = BUILTIN_DIR / "credit.yaml"
RAW = yaml.safe_load(SPEC.read_text())


def _parse(change: dict) -> object:
    raw = copy.deepcopy(RAW)
    for dotted, value in change.items():
        *parents, last = dotted.split(".")
        node = raw
        for part in parents:
            node = node[part]
        if value is None:
            del node[last]
        else:
            node[last] = value
    return parse_spec(raw, Path(SPEC))


def test_credit_declares_both_and_churn_neither() -> None:
    use_cases = load_use_cases()
    credit, churn = use_cases["credit"], use_cases["churn"]
    assert credit.explanations is not None and credit.explanations.sample_size == 1000
    assert credit.fairness is not None
    assert (credit.fairness.table, credit.fairness.via) == ("loan_applications", "loans")
    assert credit.fairness.adverse_bands == ("D", "E")
    assert credit.fairness.min_adverse_impact_ratio == 0.8
    names = {s.name for s in credit.table_specs()}
    assert {
        "monitoring.credit_explanation_agreement",
        "monitoring.credit_lime_explanations",
        "monitoring.credit_fairness",
    } <= names
    assert churn.explanations is None and churn.fairness is None
    assert not [s.name for s in churn.table_specs() if "fairness" in s.name or "lime" in s.name]


@pytest.mark.parametrize(
    ("change", "field", "rule"),
    [
        (
            {"protected_attributes": ["age_band", "bureau_score"]},
            "protected_attributes",
            r"\['bureau_score'\] are features \(rule: never a feature\)",
        ),
        ({"protected_attributes": []}, "fairness", "needs protected_attributes"),
        ({"fairness.table": "loan_offers"}, "fairness.table", "'loan_offers' is not a silver"),
        (
            {"fairness.table": "loans"},
            "fairness.table",
            r"silver.loans has no columns \['age_band', 'sex'\]",
        ),
        ({"fairness.via": None}, "fairness.via", "has no 'loan_id'"),
        ({"fairness.via": "repayments"}, "fairness.via", "must hold"),
        ({"fairness.adverse_bands": ["F"]}, "fairness.adverse_bands", "not scoring bands"),
        ({"fairness.min_adverse_impact_ratio": 1.5}, "fairness", "min_adverse_impact_ratio"),
        ({"fairness.threshold": 0.8}, "fairness", r"unknown keys \['threshold'\]"),
        ({"explanations.top_k": 1}, "explanations", "top_k >= 2"),
        ({"explanations.sample_size": "all"}, "explanations.sample_size", "must be int"),
    ],
)
def test_the_loader_refuses(change: dict, field: str, rule: str) -> None:
    with pytest.raises(SpecError, match=rule) as caught:
        _parse(change)
    assert caught.value.field == field
    assert str(SPEC) in str(caught.value)


def test_both_sections_are_optional() -> None:
    use_case = _parse({"explanations": None, "fairness": None})
    assert use_case.explanations is None and use_case.fairness is None  # type: ignore[attr-defined]
