"""The scoring service over a scored churn world, in process: batch and on-demand scores agree
bit for bit, lookups match the online store, bad input gets the right JSON error, nothing is
written but audit rows, canary/shadow/promotion follow the aliases, requests replay exactly."""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import polars as pl
import pytest
from fastapi.testclient import TestClient

from feature_repo.config import feature_store
from lakehouse.catalog import TIMESTAMP
from models.lifecycle import registry as registry_module
from models.lifecycle.registry import CHAMPION
from models.scoring.batch import entity_timestamp
from models.scoring.replay import find_request, replay_request
from models.scoring.runs import current_predictions
from models.scoring.tables import SHAP_PREFIX
from models.usecase import load_use_cases
from orchestration.cli import main
from orchestration.serving.app import create_app
from orchestration.serving.holder import CANARY, SHADOW, in_canary
from orchestration.serving.online import (
    PREDICTION_FIELDS,
    OnlineLookup,
    SqliteReads,
    StoreReads,
)
from orchestration.serving.service import Service
from tests.orchestration.serving.conftest import ServedWorld

SCORE = "/v1/churn/score"


def _batch_rows(served: ServedWorld) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The current batch predictions and explanations of the last scored day, by customer."""
    world = served.world
    tables = world.use_case.tables.scoring
    day = world.days[-1]
    predictions = (
        current_predictions(world.lake, tables).filter(pl.col("as_of_date") == day).collect()
    )
    explanations = world.lake.read(tables.explanations).join(
        predictions.select("prediction_id"), on="prediction_id", how="semi"
    )
    return predictions.sort("customer_id"), explanations.sort("customer_id")


def _audit(served: ServedWorld, service: Service) -> pl.DataFrame:
    service.flush()
    table = served.world.use_case.tables.scoring.online_predictions
    return served.world.lake.read(table)


def _assert_matches_batch(
    results: list[dict], predictions: pl.DataFrame, explanations: pl.DataFrame
) -> None:
    names = [c.removeprefix(SHAP_PREFIX) for c in explanations.columns if c.startswith(SHAP_PREFIX)]
    for result in results:
        p = predictions.row(by_predicate=pl.col("customer_id") == result["entity_id"], named=True)
        e = explanations.row(by_predicate=pl.col("customer_id") == result["entity_id"], named=True)
        assert result["score"] == p["score"]  # bit for bit
        assert result["risk_band"] == p["risk_band"]
        assert result["decision"] == p["decision"]
        assert [r["code"] for r in result["reasons"]] == p["reason_codes"]
        assert [r["contribution"] for r in result["reasons"]] == p["reason_contributions"]
        assert result["shap"]["base_value"] == e["base_value"]
        assert result["shap"]["values"] == {n: e[f"{SHAP_PREFIX}{n}"] for n in names}
        assert result["model"] == {"name": "churn", "version": p["model_version"], "role": CHAMPION}


def test_on_demand_scores_equal_batch_scores_for_the_same_features(
    running: tuple[Service, TestClient], world_env: ServedWorld
) -> None:
    service, client = running
    predictions, explanations = _batch_rows(world_env)
    ids = predictions["customer_id"].to_list()
    assert predictions["reason_codes"].list.len().sum() > 0  # some scores have reasons
    # the champion serves with its compiled trees (batch scoring predicts with xgboost)
    champion = service.use_cases["churn"].holder.current
    assert champion is not None and champion.champion.model.trees is not None

    # One customer per request, as apps ask.
    alone = [
        client.post(SCORE, json={"entity_id": i, "include_shap": True}).json() for i in ids[:40]
    ]
    _assert_matches_batch(alone, predictions, explanations)

    # By entity id: features from the online store (materialized for the scored day).
    answer = client.post(
        SCORE, json={"entities": [{"entity_id": i} for i in ids], "include_shap": True}
    )
    assert answer.status_code == 200, answer.text
    by_id = answer.json()["results"]
    assert [r["features_source"] for r in by_id] == ["online_store"] * len(ids)
    _assert_matches_batch(by_id, predictions, explanations)

    # With a full payload: the very rows batch scoring retrieved (point in time, same service).
    stamp = entity_timestamp(world_env.world.days[-1])
    store = feature_store(world_env.world.lake.uri)
    entity_df = pl.DataFrame(
        {"customer_id": ids, "event_timestamp": [stamp] * len(ids)},
        schema={"customer_id": pl.String, "event_timestamp": TIMESTAMP},
    )
    job = store.get_historical_features(
        entity_df=entity_df.to_pandas(),
        features=store.get_feature_service(world_env.world.use_case.features.service),
    )
    retrieved = pl.from_arrow(job.to_arrow())
    assert isinstance(retrieved, pl.DataFrame)
    names = world_env.world.use_case.encoding.names
    entities = [
        {"entity_id": row["customer_id"], "features": {n: row[n] for n in names}}
        for row in retrieved.to_dicts()
    ]
    answer = client.post(SCORE, json={"entities": entities, "include_shap": True})
    assert answer.status_code == 200, answer.text
    by_payload = answer.json()["results"]
    assert {r["features_source"] for r in by_payload} == {"payload"}
    _assert_matches_batch(by_payload, predictions, explanations)


def test_single_entity_answer_has_reason_texts_version_and_is_audited(
    running: tuple[Service, TestClient], world_env: ServedWorld
) -> None:
    service, client = running
    predictions, _ = _batch_rows(world_env)
    with_reasons = predictions.filter(pl.col("reason_codes").list.len() > 0)
    entity = with_reasons["customer_id"][0]
    answer = client.post(SCORE, json={"entity_id": entity}, headers={"X-Request-ID": "app-7"})
    assert answer.status_code == 200
    body = answer.json()
    assert answer.headers["X-Model-Version"] == world_env.versions[0]
    assert answer.headers["X-Request-ID"] == body["request_id"]
    catalogue = world_env.world.use_case.reasons
    assert body["reasons"], body
    for reason in body["reasons"]:
        assert reason["text"] == catalogue[reason["feature"]].text
        assert reason["code"] == catalogue[reason["feature"]].code
    audit = _audit(world_env, service).filter(pl.col("request_id") == body["request_id"])
    assert audit.height == 1
    row = audit.row(0, named=True)
    assert row["client_request_id"] == "app-7"
    assert (row["role"], row["served"], row["outcome"], row["status"]) == (
        CHAMPION,
        True,
        "scored",
        200,
    )
    assert row["score"] == body["score"] and row["customer_id"] == entity
    assert row["model_version"] == world_env.versions[0]
    booster = world_env.world.registry.load_booster(world_env.versions[0])
    assert row["model_sha256"] == hashlib.sha256(bytes(booster.save_raw("json"))).hexdigest()
    assert row["latency_ms"] > 0
    features = json.loads(row["features"])
    assert list(features) == world_env.world.use_case.encoding.names


def test_cached_lookup_returns_the_latest_batch_score_with_reason_texts(
    running: tuple[Service, TestClient], world_env: ServedWorld
) -> None:
    service, client = running
    predictions, _ = _batch_rows(world_env)
    audit_version = world_env.world.lake.version(
        world_env.world.use_case.tables.scoring.online_predictions
    )
    catalogue = world_env.world.use_case.reasons
    for row in predictions.head(8).iter_rows(named=True):
        answer = client.get(f"/v1/churn/entities/{row['customer_id']}/score")
        assert answer.status_code == 200
        body = answer.json()
        assert body["score"] == row["score"]
        assert (body["risk_band"], body["decision"]) == (row["risk_band"], row["decision"])
        assert [r["code"] for r in body["reasons"]] == row["reason_codes"]
        assert [r["text"] for r in body["reasons"]] == [
            catalogue[f].text for f in row["reason_features"]
        ]
        assert body["model"]["version"] == row["model_version"]
        assert body["scoring_run_id"] == row["scoring_run_id"]
        assert body["as_of_date"] == row["as_of_date"].isoformat()
    service.flush()  # lookups are not decisions: no audit rows
    table = world_env.world.use_case.tables.scoring.online_predictions
    assert world_env.world.lake.version(table) == audit_version


def test_online_lookup_reads_what_get_online_features_returns(world_env: ServedWorld) -> None:
    store = feature_store(world_env.world.lake.uri)
    use_case = world_env.world.use_case
    predictions, _ = _batch_rows(world_env)
    ids = [*predictions["customer_id"].head(6).to_list(), "no-such-customer"]
    reference = store.get_online_features(
        features=store.get_feature_service(use_case.features.service),
        entity_rows=[{"customer_id": i} for i in ids],
    ).to_dict()
    rows = OnlineLookup(store, use_case).features(ids)
    assert rows[-1] is None
    for index, row in enumerate(rows[:-1]):
        assert row is not None
        assert row.values == {n: reference[n][index] for n in use_case.encoding.names}
    prediction = OnlineLookup(store, use_case).prediction(ids[0])
    assert prediction is not None
    fields = [f"churn_prediction:{f}" for f in PREDICTION_FIELDS]
    expected = store.get_online_features(features=fields, entity_rows=[{"customer_id": ids[0]}])
    assert prediction.values == {
        f: v[0] for f, v in expected.to_dict().items() if f != "customer_id"
    }


def test_sqlite_reads_equal_the_stores_own_online_read(world_env: ServedWorld) -> None:
    store = feature_store(world_env.world.lake.uri)
    predictions, _ = _batch_rows(world_env)
    ids = [*predictions["customer_id"].head(5).to_list(), "no-such-customer"]
    views = [store.get_feature_view(v.name) for v in world_env.world.use_case.features.views]
    views.append(store.get_feature_view("churn_prediction"))
    every = [(view, [f.name for f in view.features]) for view in views]
    some = [(view, names[::2]) for view, names in every]
    for wanted in (every, some):
        expected = StoreReads(store.config, "customer_id").read(wanted, ids)
        assert SqliteReads(store.config, "customer_id").read(wanted, ids) == expected
        for (_, names), read in zip(wanted, expected, strict=True):
            assert read[-1] == (None, None)
            assert read[0][0] is not None and set(read[0][1] or {}) == set(names)


def _payload(world_env: ServedWorld) -> dict:
    """A valid full feature payload (the first customer's online features)."""
    predictions, _ = _batch_rows(world_env)
    store = feature_store(world_env.world.lake.uri)
    [row] = OnlineLookup(store, world_env.world.use_case).features([predictions["customer_id"][0]])
    assert row is not None
    features = dict(row.values)
    for name in world_env.world.use_case.quality.nullable:
        features[name] = features[name] if features[name] is not None else 0.5
    return {"entity_id": predictions["customer_id"][0], "features": features}


@pytest.mark.parametrize(
    ("change", "field", "fragment"),
    [
        (lambda f: f.pop("mrr"), "features.mrr", "missing features ['mrr']"),
        (lambda f: f.update(shoe_size=42), "features.shoe_size", "unknown features"),
        (lambda f: f.update(mrr="a lot"), "features.mrr", "expected a number, got a string"),
        (lambda f: f.update(seats=2.5), "features.seats", "expected an integer"),
        (lambda f: f.update(seats=True), "features.seats", "expected a number, got a boolean"),
        (lambda f: f.update(mrr=math.nan), "features.mrr", "NaN is not allowed"),
        (lambda f: f.update(mrr=math.inf), "features.mrr", "infinite"),
        (lambda f: f.update(price_per_seat=-math.inf), "features.price_per_seat", "infinite"),
        (lambda f: f.update(mrr=1e39), "features.mrr", "too large"),
        (lambda f: f.update(mrr=None), "features.mrr", "null is not allowed"),
        (lambda f: f.update(plan="platinum"), "features.plan", "unknown category 'platinum'"),
        (lambda f: f.update(plan=3), "features.plan", "expected a category"),
    ],
)
def test_invalid_payload_is_422_naming_the_field_and_audited(
    running: tuple[Service, TestClient], world_env: ServedWorld, change, field, fragment
) -> None:
    service, client = running
    payload = _payload(world_env)
    change(payload["features"])
    # Python's json writes NaN/Infinity tokens, as a careless client would.
    answer = client.post(
        SCORE, content=json.dumps(payload), headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "invalid_payload"
    assert error["field"] == field
    assert fragment in error["message"]
    audit = _audit(world_env, service).filter(
        pl.col("request_id") == answer.headers["X-Request-ID"]
    )
    assert audit.select("role", "outcome", "status", "error_code", "error_field").rows() == [
        ("none", "rejected", 422, "invalid_payload", field)
    ]
    assert audit["score"].is_null().all()


def test_nullable_features_take_null_and_nan_as_missing(
    running: tuple[Service, TestClient], world_env: ServedWorld
) -> None:
    service, client = running
    payload = _payload(world_env)
    payload["features"]["last_csat_90d"] = None
    with_null = client.post(SCORE, json=payload).json()
    payload["features"]["last_csat_90d"] = math.nan
    answer = client.post(
        SCORE, content=json.dumps(payload), headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["score"] == with_null["score"]
    assert answer.json()["missing_features"] == with_null["missing_features"] >= 1
    # Audited as JSON null (valid JSON, the same missing value), and replayed exactly.
    service.flush()
    world = world_env.world
    rows = find_request(world.lake, world.use_case, answer.json()["request_id"])
    assert json.loads(rows["features"][0])["last_csat_90d"] is None
    report = replay_request(world.use_case, world.registry, rows)
    assert report.matches, report.differences


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code"),
    [
        ("POST", "/v1/nope/score", {"json": {"entity_id": "C1"}}, 404, "unknown_use_case"),
        ("GET", "/v1/nope/entities/C1/score", {}, 404, "unknown_use_case"),
        ("GET", "/v1/churn/entities/NOBODY/score", {}, 404, "unknown_entity"),
        ("POST", SCORE, {"json": {"entity_id": "NOBODY"}}, 404, "unknown_entity"),
        (
            "POST",
            SCORE,
            {"content": b"{not json", "headers": {"Content-Type": "application/json"}},
            422,
            "invalid_payload",
        ),
        ("POST", SCORE, {"json": {"entities": []}}, 422, "invalid_payload"),
        ("POST", SCORE, {"json": {"entity_id": "C1", "extra": 1}}, 422, "invalid_payload"),
        (
            "POST",
            SCORE,
            {
                "content": b"entity_id=C1",
                "headers": {"Content-Type": "application/x-www-form-urlencoded"},
            },
            415,
            "unsupported_media_type",
        ),
        ("POST", "/push", {"json": {"feature_view_name": "churn_prediction"}}, 404, "not_found"),
        ("POST", "/write-to-online-store", {"json": {}}, 404, "not_found"),
        ("POST", "/materialize", {"json": {}}, 404, "not_found"),
        ("POST", "/materialize-incremental", {"json": {}}, 404, "not_found"),
        ("POST", "/get-online-features", {"json": {}}, 404, "not_found"),
        ("PUT", SCORE, {"json": {}}, 405, "method_not_allowed"),
        ("DELETE", SCORE, {}, 405, "method_not_allowed"),
        ("PATCH", SCORE, {}, 405, "method_not_allowed"),
        ("PUT", "/v1/churn/entities/C1/score", {"json": {"score": 0.0}}, 405, "method_not_allowed"),
        ("DELETE", "/v1/churn/entities/C1/score", {}, 405, "method_not_allowed"),
        ("POST", "/v1/churn/entities/C1/score", {"json": {}}, 405, "method_not_allowed"),
        ("POST", "/readyz", {}, 405, "method_not_allowed"),
        ("DELETE", "/metrics", {}, 405, "method_not_allowed"),
        ("PUT", "/v1/churn", {}, 405, "method_not_allowed"),
        ("DELETE", "/anything/else", {}, 404, "not_found"),
    ],
)
def test_errors_are_json_with_the_right_status(
    running: tuple[Service, TestClient], method, path, kwargs, status, code
) -> None:
    _, client = running
    answer = client.request(method, path, **kwargs)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/json"
    error = answer.json()["error"]
    assert error["code"] == code and error["message"]
    assert set(error) == {"code", "message", "field"}
    assert "Traceback" not in answer.text and "Error(" not in answer.text


def test_write_attempts_change_nothing_but_audit_rows(
    running: tuple[Service, TestClient], world_env: ServedWorld
) -> None:
    """A fake customer posted at Feast's write routes is not served back; the online store file
    and every table but the audit table keep their versions."""
    service, client = running
    world = world_env.world
    online_db = world_env.home / "feast" / "online_rows.db"
    before = hashlib.sha256(online_db.read_bytes()).hexdigest()
    tables = [t.name for t in world.use_case.table_specs() if world.lake.exists(t.name)]
    versions = {t: world.lake.version(t) for t in tables}
    fake = {"customer_id": ["FAKE1"], "score": [0.99], "model_version": ["666"]}
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        for path in (
            "/push",
            "/write-to-online-store",
            "/materialize",
            "/v1/churn/entities/FAKE1/score",
            "/v1/churn/score",
            "/v1/churn",
            "/",
        ):
            answer = client.request(
                method, path, json={"df": fake, "feature_view_name": "churn_prediction"}
            )
            expected = (422,) if (method, path) == ("POST", SCORE) else (404, 405)
            assert answer.status_code in expected, (method, path, answer.status_code)
    assert client.get("/v1/churn/entities/FAKE1/score").status_code == 404
    service.flush()
    assert hashlib.sha256(online_db.read_bytes()).hexdigest() == before
    audit = world.use_case.tables.scoring.online_predictions
    assert {t: world.lake.version(t) for t in tables if t != audit} == {
        t: v for t, v in versions.items() if t != audit
    }


def test_oversized_body_is_413_and_audited(world_env: ServedWorld) -> None:
    service = world_env.service(spool="small", max_body_bytes=2048)
    with TestClient(create_app(service, watch=False), raise_server_exceptions=False) as client:
        service.refresh()
        big = {"entities": [{"entity_id": f"C{i:07d}"} for i in range(200)]}
        answer = client.post(SCORE, json=big)
        assert answer.status_code == 413
        assert answer.json()["error"]["code"] == "payload_too_large"
        # Also without a declared length (chunked): the stream is counted.
        chunks = (json.dumps(big)[i : i + 500].encode() for i in range(0, 4000, 500))
        answer = client.post(SCORE, content=chunks, headers={"Content-Type": "application/json"})
        assert answer.status_code == 413
        audit = _audit(world_env, service).filter(pl.col("worker") == service.worker)
        assert audit.filter(pl.col("status") == 413).height == 2


def test_request_past_its_deadline_is_504_and_audited(world_env: ServedWorld) -> None:
    service = world_env.service(spool="slow", timeout_s=1e-6)
    with TestClient(create_app(service, watch=False), raise_server_exceptions=False) as client:
        service.refresh()
        answer = client.post(SCORE, json={"entity_id": "C0000001"})
        assert answer.status_code == 504
        assert answer.json()["error"]["code"] == "timeout"
        lookup = client.get("/v1/churn/entities/C0000001/score")
        assert lookup.status_code == 504
        audit = _audit(world_env, service).filter(pl.col("worker") == service.worker)
        assert audit.select("status", "error_code").rows() == [(504, "timeout")]


def test_not_ready_before_a_champion_is_loaded(world_env: ServedWorld) -> None:
    service = world_env.service(spool="cold")
    with TestClient(create_app(service, watch=False), raise_server_exceptions=False) as client:
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["error"]["code"] == "not_ready"
        answer = client.post(SCORE, json={"entity_id": "C0000001"})
        assert answer.status_code == 503 and answer.json()["error"]["code"] == "not_ready"
        service.refresh()
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["use_cases"]["churn"]["models"] == {CHAMPION: world_env.versions[0]}


def test_a_use_case_never_promoted_does_not_hold_the_others_back(world_env: ServedWorld) -> None:
    """Credit has no model in this world: the service is ready for churn, reports credit's
    problem, and answers credit's requests 503."""
    credit = load_use_cases()["credit"]
    world = world_env.world
    store = feature_store(world.lake.uri)
    settings = world_env.settings(spool="two-use-cases")
    service = Service(settings, [world.use_case, credit], world.lake, lambda: store)
    with TestClient(create_app(service, watch=False), raise_server_exceptions=False) as client:
        service.refresh()
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        report = ready.json()["use_cases"]
        assert report["churn"]["models"] == {CHAMPION: world_env.versions[0]}
        assert report["credit"]["models"] == {}
        assert any("no 'champion' alias" in p for p in report["credit"]["problems"])
        answer = client.post("/v1/credit/score", json={"entity_id": "L0000001"})
        assert answer.status_code == 503 and answer.json()["error"]["code"] == "not_ready"
        assert client.post(SCORE, json={"entity_id": "C0000001"}).status_code == 200


def test_canary_serves_its_share_and_shadow_scores_every_request(
    world_env: ServedWorld,
) -> None:
    champion, canary, shadow = world_env.versions
    registry = world_env.world.registry
    registry.set_alias(CANARY, canary)
    registry.set_alias(SHADOW, shadow)
    service = world_env.service(spool="canary", canary_share=0.5)
    predictions, _ = _batch_rows(world_env)
    ids = predictions["customer_id"].to_list()
    with TestClient(create_app(service, watch=False), raise_server_exceptions=False) as client:
        service.refresh()
        expected = {i: canary if in_canary(i, 0.5) else champion for i in ids}
        assert set(expected.values()) == {champion, canary}  # both models get some ids
        answer = client.post(SCORE, json={"entities": [{"entity_id": i} for i in ids]})
        assert answer.status_code == 200
        results = answer.json()["results"]
        assert {r["entity_id"]: r["model"]["version"] for r in results} == expected
        assert all(r["model"]["version"] != shadow for r in results)
        single = client.post(SCORE, json={"entity_id": ids[0]}).json()
        assert single["model"]["version"] == expected[ids[0]]  # stable routing
        metrics = client.get("/metrics").text
        assert (
            f'scorehouse_model_version{{role="canary",use_case="churn"}} {float(canary)}' in metrics
        )
        assert 'scorehouse_canary_share{use_case="churn"} 0.5' in metrics
        audit = _audit(world_env, service).filter(
            pl.col("request_id") == answer.json()["request_id"]
        )
    assert audit.height == 2 * len(ids)  # served + shadow
    shadow_rows = audit.filter(pl.col("role") == SHADOW)
    assert set(shadow_rows["model_version"]) == {shadow} and not shadow_rows["served"].any()
    served_rows = audit.filter(pl.col("served"))
    assert (
        dict(zip(served_rows["customer_id"], served_rows["model_version"], strict=True)) == expected
    )
    assert set(served_rows["role"]) == {CHAMPION, CANARY}


def test_promotion_swaps_the_model_and_requests_in_flight_keep_theirs(
    running: tuple[Service, TestClient], world_env: ServedWorld
) -> None:
    service, client = running
    old, new = world_env.versions[0], world_env.versions[1]
    entity = _batch_rows(world_env)[0]["customer_id"][0]
    holder = service.use_cases["churn"].holder
    in_flight = holder.current
    assert in_flight is not None and in_flight.champion.version == old
    world_env.world.registry.set_alias(CHAMPION, new)
    assert holder.refresh()
    answer = client.post(SCORE, json={"entity_id": entity})
    assert answer.json()["model"]["version"] == new
    assert answer.headers["X-Model-Version"] == new
    # The set a request took before the swap is untouched: it finishes on the old model.
    assert in_flight.champion.version == old and in_flight.champion.model.version == old
    assert (
        'scorehouse_model_version{role="champion",use_case="churn"} 2.0'
        in client.get("/metrics").text
    )
    # A version that cannot be loaded is refused; the current one stays.
    world_env.world.registry.client.set_model_version_tag("churn", old, "feature_service", "nope")
    try:
        world_env.world.registry.set_alias(CHAMPION, old)
        assert not holder.refresh()
        assert holder.current is not None and holder.current.champion.version == new
    finally:
        world_env.world.registry.client.set_model_version_tag(
            "churn", old, "feature_service", world_env.world.use_case.features.service
        )
    assert holder.refresh() and holder.current.champion.version == old


def test_the_watcher_queries_the_registry_only_after_it_changed(
    running: tuple[Service, TestClient], world_env: ServedWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    service, _ = running
    holder = service.use_cases["churn"].holder
    monkeypatch.setattr(registry_module, "MARKER_SETTLE_S", 0.0)  # file times are settled
    queries: list[dict[str, str]] = []
    query = holder.registry.alias_versions
    monkeypatch.setattr(
        holder.registry, "alias_versions", lambda: queries.append(query()) or query()
    )
    for _ in range(3):
        holder.refresh()
    assert len(queries) == 1  # the store's files did not change after the first query
    world_env.world.registry.set_alias(SHADOW, world_env.versions[1])
    try:
        assert holder.refresh()  # written: queried again, and the shadow is served
        assert len(queries) == 2 and holder.current is not None
        assert holder.current.versions()[SHADOW] == world_env.versions[1]
    finally:
        world_env.world.registry.delete_alias(SHADOW)
        assert holder.refresh() and holder.current is not None
        assert SHADOW not in holder.current.versions()


def test_replay_recomputes_an_on_demand_request_exactly(
    running: tuple[Service, TestClient], world_env: ServedWorld, capsys: pytest.CaptureFixture
) -> None:
    service, client = running
    world_env.world.registry.set_alias(SHADOW, world_env.versions[2])
    service.refresh()
    ids = _batch_rows(world_env)[0]["customer_id"].head(5).to_list()
    answer = client.post(SCORE, json={"entities": [{"entity_id": i} for i in ids]})
    request_id = answer.json()["request_id"]
    refused = client.post(SCORE, json={"entity_id": ids[0], "features": {}})
    service.flush()
    rows = find_request(world_env.world.lake, world_env.world.use_case, request_id)
    assert rows.height == 10
    report = replay_request(world_env.world.use_case, world_env.world.registry, rows)
    assert report.matches, report.differences
    assert report.rows == 10
    # Another model's result for the same features is not an exact match.
    tampered = rows.with_columns(pl.col("score") + 1e-12)
    assert not replay_request(world_env.world.use_case, world_env.world.registry, tampered).matches
    assert main(["replay", request_id]) == 0
    assert "exact match (10 on-demand decisions)" in capsys.readouterr().out
    assert main(["replay", refused.headers["X-Request-ID"]]) == 0
    assert "refused with 422 invalid_payload" in capsys.readouterr().out


def test_metrics_count_requests_by_route_and_status(running: tuple[Service, TestClient]) -> None:
    _, client = running
    client.get("/v1/churn/entities/NOBODY/score")
    client.post("/push", json={})
    text = client.get("/metrics").text
    assert (
        'scorehouse_http_requests_total{method="GET",route="/v1/{use_case}/entities/{entity_id}/score",status="404"}'
        in text
    )
    assert 'scorehouse_http_requests_total{method="POST",route="unmatched",status="404"}' in text
    assert "scorehouse_http_request_duration_seconds_bucket" in text
    assert 'scorehouse_model_version{role="champion",use_case="churn"}' in text


def test_contract_route_describes_features_and_models(
    running: tuple[Service, TestClient], world_env: ServedWorld
) -> None:
    _, client = running
    body = client.get("/v1/churn").json()
    names = [f["name"] for f in body["features"]]
    assert names == world_env.world.use_case.encoding.names
    plan = next(f for f in body["features"] if f["name"] == "plan")
    assert plan["type"] == "category" and "growth" in plan["vocabulary"]
    assert body["models"][CHAMPION]["version"] == world_env.versions[0]
    listing = client.get("/v1/use-cases").json()["use_cases"]
    assert [u["name"] for u in listing] == ["churn"]


def test_batch_shap_reference_is_xgboost(world_env: ServedWorld) -> None:
    """The batch rows the service is compared with are themselves exact: SHAP sums to the
    margin xgboost predicts (an independent check of the reference)."""
    predictions, explanations = _batch_rows(world_env)
    shap = explanations.select(pl.selectors.starts_with(SHAP_PREFIX)).to_numpy()
    margin = shap.sum(axis=1) + explanations["base_value"].to_numpy()
    probability = 1 / (1 + np.exp(-margin))
    np.testing.assert_allclose(probability, predictions["score"].to_numpy(), rtol=1e-5)
