"""The scoring service's HTTP face: a FastAPI app, read-only by construction.

Routes (everything else is 404, a wrong method 405, both as JSON errors)::

    GET  /healthz                               the process answers
    GET  /readyz                                models loaded and online store reachable (or 503)
    GET  /metrics                               Prometheus text
    GET  /v1/use-cases                          the use cases served and their model versions
    GET  /v1/{use_case}                         its input contract and models
    GET  /v1/{use_case}/entities/{id}/score     the latest batch score, from the online store
    POST /v1/{use_case}/score                   on-demand score + exact SHAP + reasons, audited

No route writes anything an app controls: the one write is the audit row of each scoring
request. Every response carries ``X-Request-ID``; scores carry ``X-Model-Version``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import Future
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orchestration.serving import errors
from orchestration.serving.errors import ServiceError, error_body, too_large
from orchestration.serving.metrics import UNMATCHED_ROUTE, Metrics
from orchestration.serving.online import WouldBlock
from orchestration.serving.service import Outcome, RequestContext, Service
from orchestration.serving.settings import ServiceSettings

logger = logging.getLogger(__name__)
JSON = "application/json"
T = TypeVar("T")


def _json(data: dict[str, Any] | bytes, status: int = 200, headers: dict | None = None) -> Response:
    body = data if isinstance(data, bytes) else orjson.dumps(data)
    return Response(body, status_code=status, media_type=JSON, headers=headers)


def _error(error: ServiceError) -> Response:
    return _json(error.body(), error.status, error.headers)


class Observe:
    """Pure ASGI middleware: a request id on every response, counts and latency by route, and
    the time the app took until the response's headers (``Server-Timing: app;dur=<ms>``), so a
    client can tell the service's time from the network's and its own."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                headers.append("X-Request-ID", request_id)
                took = (time.perf_counter() - started) * 1000
                headers.append("Server-Timing", f"app;dur={took:.3f}")
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = scope.get("route")
            label = getattr(route, "path", UNMATCHED_ROUTE)
            method, code = scope["method"], str(status)
            self.metrics.requests.labels(label, method, code).inc()
            self.metrics.latency.labels(label, method, code).observe(time.perf_counter() - started)


async def _wait(future: Future[T], timeout: float) -> T:
    return await asyncio.wait_for(asyncio.wrap_future(future), timeout)


def _context(request: Request, settings: ServiceSettings) -> RequestContext:
    client = request.headers.get("x-request-id")
    return RequestContext(
        request_id=request.state.request_id,
        requested_at=datetime.now(UTC),
        started=time.perf_counter(),
        deadline=time.monotonic() + settings.timeout_s,
        client_request_id=client[:200] if client else None,
    )


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _media_type_problem(request: Request) -> ServiceError | None:
    kind = request.headers.get("content-type")
    if kind is None:
        return None
    base = kind.split(";", 1)[0].strip().lower()
    if base == JSON or base.endswith("+json"):
        return None
    return ServiceError(
        415, errors.UNSUPPORTED_MEDIA_TYPE, f"send JSON (Content-Type: {JSON}), got {kind!r}"
    )


def create_app(service: Service | None = None, *, watch: bool = True) -> FastAPI:
    """The app over ``service``, started and stopped with the app (its lifespan).

    Without ``service`` (how ``scorehouse serve`` workers call it): every use case in effect,
    with the settings the supervisor put in the environment, and the worker stops when its
    supervisor is gone. ``watch=False`` leaves alias polling to the caller (tests).
    """
    worker = service is None
    if service is None:
        service = build_service(ServiceSettings.from_env())
    settings = service.settings

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        service.start(watch=watch)
        if worker:
            _exit_with_parent()
        try:
            yield
        finally:
            await asyncio.get_running_loop().run_in_executor(None, service.stop)

    app = FastAPI(
        title="Scorehouse scoring service",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    app.state.service = service
    app.add_middleware(Observe, metrics=service.metrics)
    _handlers(app)

    @app.get("/healthz")
    async def healthz() -> Response:
        return _json({"status": "ok", "worker": service.worker, "pid": os.getpid()})

    @app.get("/readyz")
    async def readyz() -> Response:
        try:
            ready, report = await _wait(
                service.submit_lookup(service.readiness), settings.timeout_s
            )
        except TimeoutError:
            raise ServiceError(503, errors.NOT_READY, "readiness check timed out") from None
        if ready:
            return _json(
                {
                    "status": "ready",
                    "worker": service.worker,
                    "pid": os.getpid(),
                    "use_cases": report,
                }
            )
        problems = "; ".join(
            f"{name}: {', '.join(r['problems'])}" for name, r in report.items() if r["problems"]
        )
        return _error(ServiceError(503, errors.NOT_READY, f"not ready ({problems})"))

    @app.get("/metrics")
    async def metrics() -> Response:
        body, kind = service.metrics.render()
        return Response(body, media_type=kind)

    @app.get("/v1/use-cases")
    async def use_cases() -> Response:
        return _json({"use_cases": [_summary(service, name) for name in sorted(service.use_cases)]})

    @app.get("/v1/{use_case}")
    async def contract(use_case: str) -> Response:
        served = service.service(use_case)
        return _json({**_summary(service, use_case), "features": served.contract.describe()})

    @app.get("/v1/{use_case}/entities/{entity_id}/score")
    async def latest_score(use_case: str, entity_id: str, request: Request) -> Response:
        service.service(use_case)  # 404 before any work
        ctx = _context(request, settings)
        try:
            # Read here, on the event loop, when the store answers without waiting (a local
            # SQLite read takes a fraction of a millisecond, and handing it to a thread and back
            # cost more than that, several milliseconds after an idle spell); else on a thread.
            found = service.latest_score(use_case, entity_id, ctx, wait=False)
        except WouldBlock:
            try:
                found = await _wait(
                    service.submit_lookup(lambda: service.latest_score(use_case, entity_id, ctx)),
                    max(ctx.deadline - time.monotonic(), 0.0),
                )
            except TimeoutError:
                message = "the lookup was not answered in time"
                raise ServiceError(504, errors.TIMEOUT, message) from None
        return _json(found, headers={"X-Model-Version": str(found["model"]["version"])})

    @app.post("/v1/{use_case}/score")
    async def score(use_case: str, request: Request) -> Response:
        service.service(use_case)  # unknown use case: 404, no audit table to write to
        ctx = _context(request, settings)
        body, refused = None, _media_type_problem(request)
        if refused is None:
            try:
                body = await _read_body(request, settings.max_body_bytes)
            except ServiceError as error:
                refused = error
        outcome = await _scored(service, use_case, body, ctx, refused)
        headers = dict(outcome.headers)
        if outcome.versions:
            headers["X-Model-Version"] = ",".join(outcome.versions)
        return _json(outcome.body, outcome.status, headers)

    return app


async def _scored(
    service: Service,
    use_case: str,
    body: bytes | None,
    ctx: RequestContext,
    refused: ServiceError | None,
) -> Outcome:
    """Score on the scoring thread. Past the deadline a request still queued is cancelled and
    refused 504 (audited); one already running finishes, checking the deadline between its
    stages, so its audit row and its answer always agree."""
    future = service.submit_scoring(lambda: service.score(use_case, body, ctx, refused))
    remaining = max(ctx.deadline - time.monotonic(), 0.0)
    try:
        return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), remaining)
    except TimeoutError:
        if not future.cancel():
            return await asyncio.wrap_future(future)
    timeout = ServiceError(504, errors.TIMEOUT, "the request was not answered in time")
    return await asyncio.wrap_future(
        service.submit_lookup(lambda: service.score(use_case, None, ctx, timeout))
    )


def _summary(service: Service, name: str) -> dict[str, Any]:
    served = service.service(name)
    models = served.holder.current
    return {
        "name": name,
        "description": served.use_case.description,
        "entity": {"name": served.use_case.entity.name, "key": served.use_case.entity.join_key},
        "models": {
            role: {"name": served.use_case.model_name, "version": version}
            for role, version in (models.versions() if models else {}).items()
        },
        "canary_share": models.canary_share if models and models.canary else 0.0,
    }


def _handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def service_error(_: Request, error: ServiceError) -> Response:
        return _error(error)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        if error.status_code == 405:
            allowed = (error.headers or {}).get("Allow", "")
            message = f"{request.method} is not allowed on {request.url.path} (allowed: {allowed})"
            return _json(error_body(errors.METHOD_NOT_ALLOWED, message), 405, {"Allow": allowed})
        if error.status_code == 404:
            message = f"no route {request.method} {request.url.path}"
            return _json(error_body(errors.NOT_FOUND, message), 404)
        return _json(error_body(errors.INVALID_PAYLOAD, "bad request"), error.status_code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, error: RequestValidationError) -> Response:
        return _json(error_body(errors.INVALID_PAYLOAD, "invalid request"), 422)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, error: Exception) -> Response:
        request_id = getattr(request.state, "request_id", "?")
        logger.error("request %s failed", request_id, exc_info=error)
        message = f"internal error (request {request_id})"
        return _json(error_body(errors.INTERNAL, message), 500)


def build_service(settings: ServiceSettings) -> Service:
    """A service over every use case in effect, the project's lakehouse and feature store."""
    from feature_repo.config import feature_store
    from models.usecase import load_use_cases

    use_cases = load_use_cases()
    return Service(settings, list(use_cases.values()), use_cases.lakehouse(), feature_store)


def _exit_with_parent() -> None:
    """A worker whose supervisor died (``kill -9``) stops cleanly instead of serving on as an
    orphan (the supervisor's committer lock is free then: the worker commits the spool)."""
    parent = os.getppid()
    if parent <= 1:
        return

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
