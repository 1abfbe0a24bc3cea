"""The API process's Prometheus metrics (served by its ``/metrics``): answers by route and status, how long
they took, and what ``/readyz`` last found. config/prometheus/transom-rules.yml alerts on them.

Labels are a route template (``/v1/leases/<lease_id>``, never the path itself), a method, a status code and a
dependency name: a bounded vocabulary, never an id, an identity or anything from a request (invariant 4).
Each process counts its own; with several gunicorn workers a scrape sees the worker that answered it
(docs/OPERATIONS.md, "Metrics").
"""

from __future__ import annotations

import threading
import time

from flask import Flask, Response, g, request, request_finished, request_started
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

# An answer takes milliseconds (a decision), tens of milliseconds (Vault) or, when Vault hangs, its timeout.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UNMATCHED = "unmatched"  # a path no route serves (a 404 or 405): one label value, whatever was asked


class ApiMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.responses = Counter(
            "transom_http_responses",
            "Answers by route, method and status (403 on /v1/leases: a lease denied; 429: held back).",
            ["route", "method", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "transom_http_request_duration_seconds",
            "Seconds from a request's arrival to its answer, by route template and method.",
            ["route", "method"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.dependency_up = Gauge(
            "transom_dependency_up",
            "What /readyz found when it last checked: 1 when the dependency answered, 0 when it did not.",
            ["dependency"],
            registry=registry,
        )


_instance: ApiMetrics | None = None
_instance_lock = threading.Lock()


def api_metrics() -> ApiMetrics:
    """The process's API metrics, registered in the default registry on first use."""
    global _instance
    with _instance_lock:
        if _instance is None:
            _instance = ApiMetrics()
        return _instance


def install(app: Flask) -> None:
    """Count every answer as it leaves, whatever handler or hook made it (a 429 included)."""
    api_metrics()
    request_started.connect(_started, app, weak=False)
    request_finished.connect(_finished, app, weak=False)


def _started(sender: Flask, **_: object) -> None:
    g.metrics_started = time.perf_counter()


def _finished(sender: Flask, response: Response, **_: object) -> None:
    route = request.url_rule.rule if request.url_rule is not None else UNMATCHED
    metrics = api_metrics()
    metrics.responses.labels(route=route, method=request.method, status=str(response.status_code)).inc()
    started = g.get("metrics_started")
    if started is not None:
        metrics.duration.labels(route=route, method=request.method).observe(time.perf_counter() - started)
