"""The audit ledger over HTTP (auditor, admin): filtered pages, streamed exports, one event, and the
verifiable log: checkpoints, the signing key, inclusion and consistency proofs, verification."""

from __future__ import annotations

from typing import Any

from flask import Response
from flask_smorest import Blueprint

from app.audit import queries
from app.audit.ledger import event_to_dict
from app.audit.log_service import LogService
from app.audit.models import AuditEvent
from app.audit.schemas import (
    AuditEventPageSchema,
    AuditEventSchema,
    AuditQuerySchema,
    CheckpointPageSchema,
    CheckpointQuerySchema,
    ConsistencyProofSchema,
    ConsistencyQuerySchema,
    InclusionProofSchema,
    InclusionQuerySchema,
    KeySchema,
    VerificationSchema,
)
from app.auth import require_reader
from app.errors import NotFound
from app.exports import export_response
from app.request_context import db_session, runtime
from app.schemas import EXPORT_SCHEMA, PageQuerySchema, problem_responses

bp = Blueprint("audit", __name__, url_prefix="/v1/audit", description="The audit ledger (auditor, admin)")


def _log(session: Any = None) -> LogService:
    rt = runtime()
    return LogService(session or db_session(), rt.ledger_signer, rt.settings.ledger_origin)


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


@bp.get("/events/<int(signed=True):event_id>")
@require_reader
@bp.response(200, AuditEventSchema)
@problem_responses(bp, 401, 403, 404, 503)
def get_event(event_id: int) -> dict[str, Any]:
    """One event, with its place in the log once integrated."""
    event = db_session().get(AuditEvent, event_id) if -(2**63) <= event_id < 2**63 else None
    if event is None:
        raise NotFound(f"no event with id {event_id}")
    return event_to_dict(event)


@bp.get("/checkpoint")
@require_reader
@bp.arguments(CheckpointQuerySchema, location="query", error_status_code=400)
@bp.response(200, {"type": "string"}, content_type="text/plain")
@problem_responses(bp, 400, 401, 403, 404, 503)
def checkpoint(query: dict[str, Any]) -> Response:
    """The latest signed checkpoint (or the one of ``size``), byte for byte: a C2SP signed note."""
    text = _log().checkpoint_note(query.get("size"))
    return Response(text.encode("utf-8"), content_type="text/plain; charset=utf-8")


@bp.get("/checkpoints")
@require_reader
@bp.arguments(PageQuerySchema, location="query", error_status_code=400)
@bp.response(200, CheckpointPageSchema)
@problem_responses(bp, 400, 401, 403, 503)
def list_checkpoints(query: dict[str, Any]) -> dict[str, Any]:
    """Every published checkpoint, largest first."""
    return _log().checkpoints_page(query["limit"], query["cursor"])


@bp.get("/key")
@require_reader
@bp.response(200, KeySchema)
@problem_responses(bp, 401, 403, 503)
def key() -> dict[str, Any]:
    """The checkpoints' Ed25519 public key, also as a note verifier key for auditors to pin."""
    return _log().key()


@bp.get("/proof/inclusion")
@require_reader
@bp.arguments(InclusionQuerySchema, location="query", error_status_code=400)
@bp.response(200, InclusionProofSchema)
@problem_responses(bp, 400, 401, 403, 404, 409, 503)
def inclusion_proof(query: dict[str, Any]) -> dict[str, Any]:
    """RFC 9162 inclusion proof of position ``index`` (or of ``event``) in the tree of ``size``."""
    return _log().inclusion(index=query.get("index"), size=query.get("size"), event=query.get("event"))


@bp.get("/proof/consistency")
@require_reader
@bp.arguments(ConsistencyQuerySchema, location="query", error_status_code=400)
@bp.response(200, ConsistencyProofSchema)
@problem_responses(bp, 400, 401, 403, 503)
def consistency_proof(query: dict[str, Any]) -> dict[str, Any]:
    """RFC 9162 consistency proof from the tree of size ``from`` to the tree of size ``to``."""
    return _log().consistency(query["from_"], query["to"])


@bp.get("/verify")
@require_reader
@bp.response(200, VerificationSchema)
@problem_responses(bp, 401, 403, 503)
def verify() -> dict[str, Any]:
    """Recompute every leaf from its event, the root of the latest checkpoint, and check its signature."""
    db_session().commit()
    with runtime().read_sessions() as session:
        return _log(session).verify()
