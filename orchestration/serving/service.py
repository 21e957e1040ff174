"""The scoring service's work, apart from HTTP: per use case its models, online lookups and
audit table; the cached-score lookup; on-demand scoring with its audit rows.

On-demand scoring uses batch scoring's own code: ``score_rows`` (``ScoringModel.predict``, its
``.explainer()``'s exact TreeSHAP, ``rank_reasons``, the use case's bands and decision) gives
the arrays that batch scoring lays out as tables. Only the encoding's entry differs:
``encoding.encode_rows`` gives the matrix ``encoding.matrix`` would, without the polars frame
that would cost a one-row request more than its score. All of it runs on one scoring thread
per worker: numba's kernels are not called from two threads at once, and a promotion's warm-up
queues behind the requests in flight.
"""

from __future__ import annotations

import functools
import gc
import json
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import numba
import numpy as np
import orjson
from feast import FeatureStore

from lakehouse.catalog import TableSpec
from lakehouse.commit import code_version
from lakehouse.storage import Lakehouse
from models.lifecycle.registry import CHAMPION, ModelRegistry
from models.scoring.batch import score_rows
from models.scoring.tables import BASE_VALUE, REJECTED_ROLE, SHAP_PREFIX
from models.usecase import UseCase
from orchestration.serving import errors
from orchestration.serving.audit import (
    USE_CASE,
    AuditCommitter,
    CommitLoop,
    FlushResult,
    Spool,
    ensure_tables,
)
from orchestration.serving.errors import ServiceError
from orchestration.serving.holder import SHADOW, ModelHolder, ModelSet, ServedModel
from orchestration.serving.metrics import Metrics, forget_dead_workers, record_flush
from orchestration.serving.online import OnlineLookup, OnlineRow
from orchestration.serving.payload import Contract, Item, ScoreRequest, parse
from orchestration.serving.settings import ServiceSettings

logger = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class RequestContext:
    """Identity and clock of one request, made when it arrives."""

    request_id: str
    requested_at: datetime
    started: float  # perf_counter
    deadline: float  # monotonic
    client_request_id: str | None = None

    def check_deadline(self) -> None:
        if time.monotonic() > self.deadline:
            raise ServiceError(504, errors.TIMEOUT, "the request was not answered in time")

    @property
    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000


@dataclass(frozen=True)
class Outcome:
    """What a scoring request answers: a status, a JSON body, the versions that produced it."""

    status: int
    body: dict[str, Any] | bytes
    versions: tuple[str, ...] = ()
    headers: dict[str, str] = field(default_factory=dict)


class UseCaseService:
    """One use case as served: contract, models, online lookups, audit table."""

    def __init__(self, use_case: UseCase, holder: ModelHolder) -> None:
        self.use_case = use_case
        self.contract = Contract(use_case)
        self.holder = holder
        self.lookup: OnlineLookup | None = None
        self.lookup_problem: str | None = "online store not resolved yet"
        self.table = use_case.tables.scoring.online_predictions
        self.spec: TableSpec = use_case.table_spec(self.table)
        self.policy_json = json.dumps(use_case.scoring.to_json(), sort_keys=True)
        self.shap_columns = [f"{SHAP_PREFIX}{n}" for n in use_case.encoding.names]


def worker_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class Service:
    """Everything one worker process serves (see the module docstring)."""

    def __init__(
        self,
        settings: ServiceSettings,
        use_cases: list[UseCase],
        lake: Lakehouse,
        store: Callable[[], FeatureStore],
        *,
        registry: Callable[[UseCase], ModelRegistry] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.lake = lake
        self._store_factory = store
        self._store: FeatureStore | None = None
        self.worker = worker_name()
        self.code_version = code_version()
        self._scoring = ThreadPoolExecutor(
            1, thread_name_prefix="scoring", initializer=_single_threaded_kernels
        )
        self._lookups = ThreadPoolExecutor(2, thread_name_prefix="lookup")
        make_registry = registry or (lambda uc: ModelRegistry(uc.model_name))
        self.use_cases: dict[str, UseCaseService] = {}
        for use_case in use_cases:
            share = settings.share(use_case.name)
            holder = ModelHolder(
                use_case,
                make_registry(use_case),
                self.store,
                share,
                compute=self.on_scoring_thread,
                on_swap=functools.partial(self._swapped, use_case.name),
                on_failure=functools.partial(self._load_failed, use_case.name),
            )
            self.use_cases[use_case.name] = UseCaseService(use_case, holder)
            for role in ("champion", "canary", "shadow"):
                self.metrics.model_version.labels(use_case.name, role).set(0)
            self.metrics.canary_share.labels(use_case.name).set(0)
        self.spool: Spool | None = None
        self.committer: CommitLoop | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------------- lifecycle
    def store(self) -> FeatureStore:
        if self._store is None:
            self._store = self._store_factory()
        return self._store

    def start(self, *, watch: bool = True) -> None:
        """Open the spool, create the audit tables, start the model watcher and the committer.

        The committer commits only while this process holds the spool's committer lock: under
        ``scorehouse serve`` the supervisor holds it, and a worker's flushes do nothing."""
        gc.collect()
        gc.freeze()  # see _swapped
        forget_dead_workers()
        ensure_tables(self.lake, [u.table for u in self.use_cases.values()])
        root = self.settings.spool_root
        root.mkdir(parents=True, exist_ok=True)
        self.spool = Spool(root, self.worker)
        committer = AuditCommitter(
            self.lake,
            {name: u.spec for name, u in self.use_cases.items()},
            root,
            on_commit=self.metrics.audit_committed.inc,
        )
        self.committer = CommitLoop(
            committer,
            self.settings.flush_interval_s,
            on_flush=functools.partial(record_flush, self.metrics),
            on_error=lambda _: self.metrics.audit_flush_errors.inc(),
        ).start()
        self._thread(self._spare_loop, "audit-spare")
        if watch:
            self._thread(self._watch_loop, "model-watcher")

    def _thread(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        """Stop watching, release the spool, commit what is spooled (when this process is the
        committer; under ``scorehouse serve`` the supervisor does once its workers are gone)."""
        self._stop.set()
        if self.spool is not None:
            self.spool.spare_needed.set()  # wakes the spare loop
        for thread in self._threads:
            thread.join(timeout=30)
        self._scoring.shutdown(wait=True)
        self._lookups.shutdown(wait=True)
        if self.spool is not None:
            self.spool.close()
        if self.committer is not None:
            self.committer.stop()

    def refresh(self) -> None:
        """Follow every use case's aliases and re-resolve its online views (one poll)."""
        try:
            store = self.store()
        except Exception as exc:
            for service in self.use_cases.values():
                service.lookup_problem = f"feature store unavailable: {_first_line(exc)}"
            return
        for service in self.use_cases.values():
            try:
                if service.lookup is None:
                    service.lookup = OnlineLookup(store, service.use_case)
                else:
                    service.lookup.refresh(store)
                service.lookup_problem = None
            except Exception as exc:
                service.lookup_problem = f"online views not resolved: {_first_line(exc)}"
            service.holder.refresh()

    def _watch_loop(self) -> None:
        while not self._stop.is_set():
            self.refresh()
            self._stop.wait(self.settings.poll_s)

    def _spare_loop(self) -> None:
        """Zero-fill the spool's next segment whenever the last one was used."""
        assert self.spool is not None
        while True:
            self.spool.spare_needed.wait()
            if self._stop.is_set():
                return
            try:
                self.spool.prepare_spare()
            except OSError:
                logger.exception("could not prepare the next audit spool segment")
                self._stop.wait(1.0)

    def flush(self) -> FlushResult:
        """Commit the spool now (tests)."""
        assert self.committer is not None
        return self.committer.committer.flush()

    def _load_failed(self, name: str, _: str) -> None:
        self.metrics.load_failures.labels(name).inc()

    def _swapped(self, name: str, new: ModelSet, old: dict[str, str]) -> None:
        versions = new.versions()
        for role in ("champion", "canary", "shadow"):
            self.metrics.model_version.labels(name, role).set(int(versions.get(role, 0)))
            if versions.get(role) and versions.get(role) != old.get(role):
                self.metrics.swaps.labels(name, role).inc()
        self.metrics.canary_share.labels(name).set(new.canary_share if new.canary else 0.0)
        # Everything alive now (imports, registry, the loaded models) stays alive: exempt it from
        # the cyclic garbage collector, whose full passes over the ~600,000 objects of a worker
        # stalled every thread 460 ms. Frozen objects are still freed when their last reference
        # goes; only cycles of a replaced model's loading stay (no collection before freezing:
        # it would stall the requests in flight).
        gc.freeze()

    def on_scoring_thread(self, action: Callable[[], T]) -> T:
        return self._scoring.submit(action).result()

    def submit_scoring(self, action: Callable[[], T]) -> Future[T]:
        return self._scoring.submit(action)

    def submit_lookup(self, action: Callable[[], T]) -> Future[T]:
        return self._lookups.submit(action)

    # ------------------------------------------------------------------------- readiness
    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Ready when every use case that has a champion has it loaded and its online store
        answers, and at least one use case is served. A use case never promoted (no champion in
        the registry yet) is reported with its problem but does not hold the others back: its
        requests answer 503 until a champion appears."""
        report: dict[str, Any] = {}
        ready, served = True, 0
        for name, service in self.use_cases.items():
            models = service.holder.current
            problems = []
            if models is None:
                problems.append(service.holder.problem or "no champion loaded")
            if service.lookup is None:
                problems.append(service.lookup_problem or "online store not resolved")
            else:
                try:
                    service.lookup.ping()
                except Exception as exc:
                    problems.append(f"online store unreachable: {_first_line(exc)}")
            served += models is not None
            ready = ready and (not problems or service.holder.awaiting_champion)
            report[name] = {
                "models": models.versions() if models else {},
                "canary_share": models.canary_share if models and models.canary else 0.0,
                "problems": problems,
            }
        return ready and served > 0, report

    def service(self, name: str) -> UseCaseService:
        try:
            return self.use_cases[name]
        except KeyError:
            known = ", ".join(sorted(self.use_cases)) or "none"
            raise ServiceError(
                404,
                errors.UNKNOWN_USE_CASE,
                f"unknown use case {name!r} (served: {known})",
                "use_case",
            ) from None

    # --------------------------------------------------------------------- cached lookups
    def latest_score(
        self, name: str, entity_id: str, ctx: RequestContext, *, wait: bool = True
    ) -> dict[str, Any]:
        """The entity's latest batch score, band, decision and reasons, from the online store;
        ``wait=False``: ``WouldBlock`` instead of waiting for the store (``OnlineLookup``)."""
        service = self.service(name)
        if service.lookup is None:
            raise ServiceError(503, errors.NOT_READY, service.lookup_problem or "not ready")
        ctx.check_deadline()
        row = service.lookup.prediction(entity_id, wait=wait)
        ctx.check_deadline()
        if row is None or row.values.get("score") is None:
            raise ServiceError(
                404,
                errors.UNKNOWN_ENTITY,
                f"no batch score for {service.use_case.entity.name} {entity_id!r} in the "
                "online store",
                "entity_id",
            )
        v = row.values
        catalogue = service.use_case.reasons
        reasons = []
        for code, feature, contribution in zip(
            v.get("reason_codes") or [],
            v.get("reason_features") or [],
            v.get("reason_contributions") or [],
            strict=False,
        ):
            known = catalogue.get(feature)
            reasons.append(
                {
                    "code": code,
                    "text": known.text if known is not None else None,
                    "feature": feature,
                    "contribution": contribution,
                }
            )
        scored_at = v.get("scored_at")
        return {
            "use_case": name,
            "entity_id": entity_id,
            "score": v["score"],
            "risk_band": v.get("risk_band"),
            "decision": v.get("decision"),
            "reasons": reasons,
            "model": {"name": service.use_case.model_name, "version": v.get("model_version")},
            "scoring_run_id": v.get("scoring_run_id"),
            "as_of_date": (row.as_of - timedelta(days=1)).date().isoformat(),
            "scored_at": scored_at.isoformat() if isinstance(scored_at, datetime) else None,
            "source": "batch",
        }

    # --------------------------------------------------------------------- on-demand scores
    def score(
        self, name: str, body: bytes | None, ctx: RequestContext, refused: ServiceError | None
    ) -> Outcome:
        """Parse, score and audit one request (on the scoring thread); never raises."""
        service = self.use_cases[name]
        entity_id: str | None = None
        try:
            if refused is not None:
                raise refused
            ctx.check_deadline()
            models = service.holder.current  # taken once: the whole request uses this set
            if models is None:
                raise ServiceError(
                    503, errors.NOT_READY, service.holder.problem or "no champion loaded"
                )
            assert body is not None
            request = parse(body, service.contract, self.settings.max_batch)
            entity_id = request.items[0].entity_id
            rows, sources = self._features(service, request.items)
            ctx.check_deadline()
            results, audit = self._score(service, models, request, rows, sources, ctx)
            ctx.check_deadline()
            self._spool(audit)
        except ServiceError as refusal:
            return self._refuse(service, refusal, ctx, entity_id)
        except Exception:
            logger.exception("request %s failed", ctx.request_id)
            internal = ServiceError(
                500, errors.INTERNAL, f"internal error (request {ctx.request_id})"
            )
            return self._refuse(service, internal, ctx, entity_id)
        for role, count in _count_roles(audit).items():
            self.metrics.scored.labels(name, role).inc(count)
        versions = tuple(sorted({r["model"]["version"] for r in results}))
        head = {"request_id": ctx.request_id, "use_case": name}
        body_out = {**head, **results[0]} if request.single else {**head, "results": results}
        return Outcome(200, body_out, versions)

    def _features(
        self, service: UseCaseService, items: tuple[Item, ...]
    ) -> tuple[list[dict[str, Any]], list[OnlineRow | None]]:
        """Each item's feature values: its payload, or the online store's row."""
        wanted = [i for i, item in enumerate(items) if item.features is None]
        found: dict[int, OnlineRow] = {}
        if wanted:
            if service.lookup is None:
                raise ServiceError(503, errors.NOT_READY, service.lookup_problem or "not ready")
            online = service.lookup.features([items[i].entity_id for i in wanted])
            for i, row in zip(wanted, online, strict=True):
                if row is None:
                    where = "entity_id" if len(items) == 1 else f"entities[{i}].entity_id"
                    raise ServiceError(
                        404,
                        errors.UNKNOWN_ENTITY,
                        f"{service.use_case.entity.name} {items[i].entity_id!r} has no features "
                        "in the online store",
                        where,
                    )
                found[i] = row
        values = [
            item.features if item.features is not None else found[i].values
            for i, item in enumerate(items)
        ]
        return values, [found.get(i) for i in range(len(items))]

    def _score(
        self,
        service: UseCaseService,
        models: ModelSet,
        request: ScoreRequest,
        rows: list[dict[str, Any]],
        sources: list[OnlineRow | None],
        ctx: RequestContext,
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        use_case = service.use_case
        names, catalogue = use_case.encoding.names, use_case.reasons
        ids = [item.entity_id for item in request.items]
        matrix = use_case.encoding.encode_rows(rows)
        served = [models.route(i) for i in ids]
        scored: dict[tuple[int, str], tuple[ServedModel, dict[str, Any], list[float]]] = {}
        groups: dict[str, list[int]] = {}
        for i, model in enumerate(served):
            groups.setdefault(model.role, []).append(i)
        passes = [(served[g[0]], g) for g in groups.values()]
        if models.shadow is not None:
            passes.append((models.shadow, list(range(len(ids)))))
        for model, index in passes:
            rows_of = matrix if len(index) == len(ids) else matrix[np.asarray(index)]
            result = score_rows(model.model, model.explainer, use_case, rows_of, use_case.scoring)
            shap = result.shap.tolist()
            decided = result.decision_rows(names, catalogue)
            for n, i in enumerate(index):
                scored[(i, model.role)] = (model, decided[n], shap[n])
        request_columns = self._request_columns(service, ctx, ctx.elapsed_ms)
        model_columns = {m.role: _model_columns(m) for m, _ in passes}
        # orjson writes a NaN (a nullable feature given as NaN: missing) as null, valid JSON
        # that replays to the same missing value.
        features_json = [orjson.dumps({n: row[n] for n in names}).decode() for row in rows]
        audit = [
            {
                **request_columns,
                **model_columns[model.role],
                **self._audit_columns(service, ids[i], i, features_json[i], sources[i]),
                **p,  # DECISION_FIELDS, from Scored.decision_rows
                BASE_VALUE: e[-1],
                **dict(zip(service.shap_columns, e[:-1], strict=True)),
                "scoring_policy": service.policy_json,
            }
            for (i, _), (model, p, e) in sorted(scored.items(), key=lambda kv: kv[0])
        ]
        results = [
            self._result(service, ids[i], *scored[(i, served[i].role)], sources[i], request)
            for i in range(len(ids))
        ]
        return results, audit

    def _result(
        self,
        service: UseCaseService,
        entity_id: str,
        model: ServedModel,
        p: dict[str, Any],
        shap: list[float],
        source: OnlineRow | None,
        request: ScoreRequest,
    ) -> dict[str, Any]:
        catalogue, encoding = service.use_case.reasons, service.use_case.encoding
        reasons = [
            {
                "code": code,
                "text": catalogue[feature].text,
                "feature": feature,
                "value": None if value is None else encoding.decode(feature, value),
                "contribution": contribution,
            }
            for code, feature, value, contribution in zip(
                p["reason_codes"],
                p["reason_features"],
                p["reason_values"],
                p["reason_contributions"],
                strict=True,
            )
        ]
        result = {
            "entity_id": entity_id,
            "score": p["score"],
            "risk_band": p["risk_band"],
            "decision": p["decision"],
            "reasons": reasons,
            "model": {"name": model.model.name, "version": model.version, "role": model.role},
            "features_source": "online_store" if source is not None else "payload",
            "features_as_of": source.as_of.isoformat() if source is not None else None,
            "missing_features": p["missing_feature_count"],
        }
        if request.include_shap:
            names = service.use_case.encoding.names
            result["shap"] = {
                "base_value": shap[-1],
                "values": dict(zip(names, shap[:-1], strict=True)),
            }
        return result

    def _audit_columns(
        self,
        service: UseCaseService,
        entity_id: str,
        item: int,
        features: str,
        source: OnlineRow | None,
    ) -> dict[str, Any]:
        """The audit columns of one scored item, apart from its request, model and results."""
        return {
            "item": item,
            service.use_case.entity.join_key: entity_id,
            "outcome": "scored",
            "status": 200,
            "feature_source": "online_store" if source is not None else "payload",
            "features": features,
            "features_event_timestamp": source.as_of if source is not None else None,
        }

    def _request_columns(
        self, service: UseCaseService, ctx: RequestContext, latency_ms: float
    ) -> dict[str, Any]:
        return {
            USE_CASE: service.use_case.name,
            "request_id": ctx.request_id,
            "request_date": ctx.requested_at.date(),
            "requested_at": ctx.requested_at,
            "client_request_id": ctx.client_request_id,
            "latency_ms": latency_ms,
            "worker": self.worker,
            "code_version": self.code_version,
        }

    def _refuse(
        self,
        service: UseCaseService,
        error: ServiceError,
        ctx: RequestContext,
        entity_id: str | None,
    ) -> Outcome:
        """Audit a refused request (its reason), then answer its error."""
        row = {
            **self._request_columns(service, ctx, ctx.elapsed_ms),
            "item": 0,
            "role": REJECTED_ROLE,
            "served": False,
            service.use_case.entity.join_key: entity_id,
            "outcome": "rejected",
            "status": error.status,
            "error_code": error.code,
            "error_field": error.field,
            "error_message": error.message,
        }
        self.metrics.rejected.labels(service.use_case.name, error.code).inc()
        try:
            self._spool([row])
        except Exception:
            logger.exception("request %s: the refusal could not be spooled", ctx.request_id)
            error = ServiceError(500, errors.INTERNAL, f"internal error (request {ctx.request_id})")
        return Outcome(error.status, error.body(), headers=error.headers)

    def _spool(self, rows: list[dict[str, Any]]) -> None:
        assert self.spool is not None, "the service is not started"
        self.spool.append(rows)
        self.metrics.audit_spooled.inc(len(rows))


def _model_columns(model: ServedModel) -> dict[str, Any]:
    """The audit columns that name the model (and role) that scored a row."""
    m = model.model
    return {
        "role": model.role,
        "served": model.role != SHADOW,
        "model_name": m.name,
        "model_version": m.version,
        "model_sha256": m.sha256,
        "iteration_range": f"{m.iteration_range[0]},{m.iteration_range[1]}",
        "explainer_backend": model.explainer.backend,
        "feature_service": m.feature_service,
    }


def _single_threaded_kernels() -> None:
    """numba's parallel kernels (TreeSHAP, reason ranking) run on the scoring thread alone (the
    setting is per thread): waking their pool cost a one-customer request more than the kernels
    themselves, and a worker's cores are shared with the other workers anyway."""
    numba.set_num_threads(1)


def _count_roles(audit: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in audit:
        counts[row["role"]] = counts.get(row["role"], 0) + 1
    return counts


def now_utc() -> datetime:
    return datetime.now(UTC)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:300] if lines else type(exc).__name__


__all__ = ["CHAMPION", "Outcome", "RequestContext", "Service", "ServiceError", "UseCaseService"]
