"""Scoring requests' shape and canary routing, without a world."""

from __future__ import annotations

import json

import pytest

from models.usecase import load_use_cases
from orchestration.serving.errors import ServiceError
from orchestration.serving.holder import in_canary
from orchestration.serving.payload import Contract, parse

CONTRACT = Contract(load_use_cases()["churn"])


def _refusal(payload: object, max_batch: int = 10) -> tuple[str | None, str]:
    with pytest.raises(ServiceError) as raised:
        parse(json.dumps(payload).encode(), CONTRACT, max_batch)
    assert raised.value.status == 422 and raised.value.code == "invalid_payload"
    return raised.value.field, raised.value.message


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ([1, 2], "body"),
        ({}, "entity_id"),
        ({"entity_id": ""}, "entity_id"),
        ({"entity_id": 7}, "entity_id"),
        ({"entity_id": "x" * 257}, "entity_id"),
        ({"entity_id": "C1", "features": [1]}, "features"),
        ({"entity_id": "C1", "include_shap": "yes"}, "include_shap"),
        ({"entity_id": "C1", "entities": []}, "entities"),
        ({"entities": "C1"}, "entities"),
        ({"entities": [{"entity_id": "C1"}, "C2"]}, "entities[1]"),
        ({"entities": [{"entity_id": "C1"}, {"id": "C2"}]}, "entities[1].id"),
        (
            {"entities": [{"entity_id": "C1", "features": {"mrr": 1.0}}]},
            "entities[0].features.active_users_7d_mean",
        ),
        ({"entities": [{"entity_id": f"C{i}"} for i in range(11)]}, "entities"),
        ({"customer": "C1"}, "customer"),
    ],
)
def test_malformed_requests_name_the_field(payload: object, field: str) -> None:
    assert _refusal(payload)[0] == field


def test_valid_requests_parse_in_order() -> None:
    single = parse(b'{"entity_id": "C1", "include_shap": true}', CONTRACT, 10)
    assert single.single and single.include_shap
    assert [(i.entity_id, i.features) for i in single.items] == [("C1", None)]
    batch = parse(
        json.dumps({"entities": [{"entity_id": "C2"}, {"entity_id": "C1"}]}).encode(), CONTRACT, 2
    )
    assert not batch.single and [i.entity_id for i in batch.items] == ["C2", "C1"]


def test_invalid_json_is_refused() -> None:
    with pytest.raises(ServiceError) as raised:
        parse(b"{", CONTRACT, 1)
    assert raised.value.field == "body"
    with pytest.raises(ServiceError):
        parse(b"\xff\xfe", CONTRACT, 1)


def test_canary_routing_is_stable_and_takes_its_share() -> None:
    ids = [f"C{i:07d}" for i in range(20_000)]
    assert not any(in_canary(i, 0.0) for i in ids)
    assert all(in_canary(i, 1.0) for i in ids)
    share = sum(in_canary(i, 0.1) for i in ids) / len(ids)
    assert 0.09 < share < 0.11
    # Growing the share only adds entities: none leaves the canary.
    assert all(in_canary(i, 0.2) for i in ids if in_canary(i, 0.1))
    # CRC-32, not Python's per-process salted hash: the same ids in every worker and release.
    first = [i for i in ids[:1000] if in_canary(i, 0.1)][:5]
    assert first == ["C0000011", "C0000014", "C0000025", "C0000035", "C0000041"]
