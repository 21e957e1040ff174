"""Prometheus metrics of the scoring service (``GET /metrics``, text exposition format).

With several workers (``scorehouse serve`` always runs workers as processes), metric values
live in memory-mapped files under ``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics`` of any worker
reports the sum over all of them (gauges: the most recent value). Without that variable (an app
made in-process, e.g. in tests) each app has its own registry.

Request counts and latencies are labelled by route *template* (``/v1/{use_case}/score``), never
by raw path, so an unknown path or entity id cannot grow the label set.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as prometheus_multiprocess
from prometheus_client import values as prometheus_values

if TYPE_CHECKING:
    from orchestration.serving.audit import AuditCommitter

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Fine buckets below 10 ms: the lookups and on-demand scores live there.
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.02,
    0.03,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)
UNMATCHED_ROUTE = "unmatched"


class Metrics:
    """Every metric the service exports, in one registry per app."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "scorehouse_http_requests",
            "HTTP requests by route template, method and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "scorehouse_http_request_duration_seconds",
            "Time from the request's arrival to the end of its response, by route and status.",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.model_version = Gauge(
            "scorehouse_model_version",
            "Registered version served per use case and role (0: the role is not served).",
            ["use_case", "role"],
            multiprocess_mode="mostrecent",
            registry=r,
        )
        self.canary_share = Gauge(
            "scorehouse_canary_share",
            "Configured share of entities the canary serves (0 while no canary is set).",
            ["use_case"],
            multiprocess_mode="mostrecent",
            registry=r,
        )
        self.scored = Counter(
            "scorehouse_scored_items",
            "Entities scored on demand, by use case and model role.",
            ["use_case", "role"],
            registry=r,
        )
        self.rejected = Counter(
            "scorehouse_rejected_requests",
            "Scoring requests refused, by use case and error code.",
            ["use_case", "code"],
            registry=r,
        )
        self.swaps = Counter(
            "scorehouse_model_swaps",
            "Times a worker switched a role to a newly loaded model version.",
            ["use_case", "role"],
            registry=r,
        )
        self.load_failures = Counter(
            "scorehouse_model_load_failures",
            "Model versions that could not be loaded or checked (the previous one stays).",
            ["use_case"],
            registry=r,
        )
        self.audit_spooled = Counter(
            "scorehouse_audit_spooled_rows",
            "Audit rows written and fsynced to the local spool.",
            registry=r,
        )
        self.audit_committed = Counter(
            "scorehouse_audit_committed_rows",
            "Audit rows committed to Delta (spool segments then removed).",
            registry=r,
        )
        self.audit_flush_errors = Counter(
            "scorehouse_audit_flush_errors",
            "Failed spool flushes (the rows stay spooled and are retried).",
            registry=r,
        )
        self.audit_pending = Gauge(
            "scorehouse_audit_pending_rows",
            "Audit rows the committer's last flush left in the spool (Delta failed, or their "
            "use case is not served).",
            multiprocess_mode="livesum",
            registry=r,
        )

    def render(self) -> tuple[bytes, str]:
        """The exposition text (every worker's when running multi-process) and its type."""
        if os.environ.get(MULTIPROC_ENV):
            registry = CollectorRegistry()
            prometheus_multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def share_metrics(folder: str) -> None:
    """Put this process's metrics, and those of the workers it starts, in ``folder`` (the
    supervisor calls this before it makes any metric). prometheus_client picks its value store
    when it is first imported, maybe before this: it is picked again."""
    os.environ[MULTIPROC_ENV] = folder
    prometheus_values.ValueClass = prometheus_values.get_value_class()


def record_flush(metrics: Metrics, committer: AuditCommitter) -> None:
    """After a flush: the backlog it left, when this process is the spool's committer."""
    if committer.holds_lock:
        metrics.audit_pending.set(committer.backlog)


def forget_dead_workers() -> None:
    """Drop the live gauges of workers that are gone (a replaced worker's pending audit rows
    must not count forever); multi-process mode only, called as a worker starts."""
    folder = os.environ.get(MULTIPROC_ENV)
    if not folder or not os.path.isdir(folder):
        return
    for name in os.listdir(folder):
        if not name.startswith("gauge_live"):
            continue
        pid = int(name.rsplit("_", 1)[-1].removesuffix(".db"))
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            prometheus_multiprocess.mark_process_dead(pid)
        except PermissionError:
            pass  # alive, someone else's
