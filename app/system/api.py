"""Liveness, readiness and metrics: no credential needed."""

from __future__ import annotations

from typing import Any

from flask import Response
from flask_smorest import Blueprint
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from app.http import runtime
from app.vault.port import VaultError

bp = Blueprint("system", __name__, description="Health, readiness and metrics")


@bp.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@bp.get("/readyz")
def readyz() -> tuple[dict[str, Any], int]:
    """200 when the database and Vault both answer; 503 naming what does not."""
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
    if errors:
        body["error"] = errors
        return body, 503
    return body, 200


@bp.get("/metrics")
def metrics() -> Response:
    return Response(generate_latest(), mimetype=CONTENT_TYPE_LATEST)
