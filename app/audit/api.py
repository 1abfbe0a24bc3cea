"""The audit ledger over HTTP (auditor, admin): filtered pages, streamed exports, chain verification."""

from __future__ import annotations

from typing import Any

from flask import Response
from flask_smorest import Blueprint

from app.audit import queries
from app.audit.schemas import AuditEventPageSchema, AuditQuerySchema, VerificationSchema
from app.auth import require_reader
from app.exports import export_response
from app.request_context import db_session, runtime
from app.schemas import EXPORT_SCHEMA, problem_responses

bp = Blueprint("audit", __name__, url_prefix="/v1/audit", description="The audit ledger (auditor, admin)")


@bp.get("/events")
@require_reader
@bp.arguments(AuditQuerySchema, location="query", error_status_code=400)
@bp.response(200, AuditEventPageSchema)
@bp.alt_response(200, schema=EXPORT_SCHEMA, content_type="text/csv")
@bp.alt_response(200, schema=EXPORT_SCHEMA, content_type="application/x-ndjson")
@problem_responses(bp, 400, 401, 403, 503)
def list_events(query: dict[str, Any]) -> dict[str, Any] | Response:
    """Events newest first; ``format=csv|jsonl`` streams the whole filtered set instead of a page."""
    if query["format"] != "json":
        db_session().commit()  # the stream reads in its own session; hold nothing of this request's open
        return export_response(
            lambda: queries.export_rows(runtime().read_sessions, query),
            query["format"],
            queries.EXPORT_COLUMNS,
            "audit",
        )
    return queries.json_page(db_session(), query)


@bp.get("/verify")
@require_reader
@bp.response(200, VerificationSchema)
@problem_responses(bp, 401, 403, 503)
def verify() -> dict[str, Any]:
    """Recompute every hash and link of the chain up to its head."""
    db_session().commit()
    return queries.verify(runtime().read_sessions)
