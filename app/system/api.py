"""Liveness, readiness and metrics: no credential needed (``/metrics`` needs a broker token when
``TRANSOM_METRICS_REQUIRE_AUTH`` is set: its labels name policies)."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app
from flask.blueprints import BlueprintSetupState
from flask_smorest import Blueprint
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from app.api_metrics import api_metrics
from app.auth import require_reader
from app.request_context import runtime
from app.runtime import runtime_of
from app.schemas import problem_responses
from app.system.readiness import Answer, ReadinessCache
from app.system.schemas import METRICS_CONTENT_TYPE, METRICS_SCHEMA, HealthSchema, ReadinessSchema
from app.vault.port import VaultError

bp = Blueprint("system", __name__, description="Health, readiness and metrics")
READINESS = "transom.readiness"


@bp.record_once
def _make_readiness_cache(state: BlueprintSetupState) -> None:
    state.app.extensions[READINESS] = ReadinessCache(runtime_of(state.app).clock)


@bp.get("/healthz")
@bp.alt_response(200, schema=HealthSchema, description="The process serves")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@bp.get("/readyz")
@bp.alt_response(200, schema=ReadinessSchema, description="The database and Vault answer")
@bp.alt_response(503, schema=ReadinessSchema, description="Not ready: `error` names what does not answer")
def readyz() -> tuple[dict[str, Any], int]:
    """200 when the database and Vault both answer; 503 naming what does not. Checked at most once a
    second per process; a burst in between gets the last answer."""
    cache: ReadinessCache = current_app.extensions[READINESS]
    return cache.answer(_check_readiness)


def _check_readiness() -> Answer:
    rt = runtime()
    body: dict[str, Any] = {}
    errors: dict[str, str] = {}
    try:
        with rt.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        body["database"] = "ok"
    except Exception:  # any driver error means "not ready"; the detail stays in the log
        body["database"] = "unavailable"
        errors["database"] = "the database does not answer"
    try:
        rt.vault.health()
        body["vault"] = "ok"
    except VaultError as exc:
        body["vault"] = "unavailable"
        errors["vault"] = f"Vault is unavailable ({exc.error_class})"
    for dependency in ("database", "vault"):
        api_metrics().dependency_up.labels(dependency=dependency).set(int(body[dependency] == "ok"))
    if errors:
        body["error"] = errors
        return body, 503
    return body, 200


@bp.get("/metrics")
@problem_responses(bp, 401, 403)
@bp.alt_response(200, schema=METRICS_SCHEMA, content_type=METRICS_CONTENT_TYPE, description="Prometheus text")
def metrics() -> Response:
    if runtime().settings.metrics_require_auth:
        return _metrics_for_a_broker_token()
    return _metrics()


def _metrics() -> Response:
    return Response(generate_latest(), content_type=CONTENT_TYPE_LATEST)  # mimetype= would add a 2nd charset


# TRANSOM_METRICS_REQUIRE_AUTH: the scraper sends an auditor's (or an admin's) broker token.
_metrics_for_a_broker_token = require_reader(_metrics)
