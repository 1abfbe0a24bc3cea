"""``/v1/approvals``: people list, read, approve and deny requests; a workload reads its own."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from app.approvals import queries
from app.approvals.schemas import (
    ApprovalPageSchema,
    ApprovalQuerySchema,
    ApprovalSchema,
    DecisionRequestSchema,
)
from app.approvals.service import APPROVE, DENY, ApprovalService, Approver
from app.auth import (
    current_caller,
    current_workload,
    require_broker_token,
    require_reader,
    require_workload_or_reader,
)
from app.request_context import config_snapshot, db_session, runtime
from app.schemas import decode_cursor, encode_cursor, problem_responses

bp = Blueprint("approvals", __name__, url_prefix="/v1/approvals", description="Approvals and break-glass")


def approval_service() -> ApprovalService:
    rt = runtime()
    return ApprovalService(db_session(), rt.clock, notify=rt.settings.notify_webhook_url is not None)


@bp.get("")
@require_reader
@bp.arguments(ApprovalQuerySchema, location="query", error_status_code=400)
@bp.response(200, ApprovalPageSchema)
@problem_responses(bp, 400, 401, 403, 503)
def list_approvals(query: dict[str, Any]) -> dict[str, Any]:
    after = queries.position(decode_cursor(query["cursor"], 2)) if query["cursor"] else None
    rows = queries.page(db_session(), query, limit=query["limit"] + 1, after=after)
    items = rows[: query["limit"]]
    more = len(rows) > query["limit"]
    return {
        "items": queries.shown_page(db_session(), items, config_snapshot()),
        "next_cursor": encode_cursor(queries.cursor_of(items[-1])) if more else None,
    }


@bp.get("/<request_id>")
@require_workload_or_reader
@bp.response(200, ApprovalSchema)
@problem_responses(bp, 401, 403, 404, 503)
def get_approval(request_id: str) -> dict[str, Any]:
    workload = None if current_caller() is not None else current_workload().identity
    request = approval_service().get(request_id, workload=workload)
    return queries.shown(db_session(), request, config_snapshot())


def _decide(request_id: str, verdict: str, comment: str | None) -> dict[str, Any]:
    caller = current_caller()
    assert caller is not None
    approver = Approver(caller.name, caller.role, caller.ci_login)
    config = config_snapshot()
    request = approval_service().decide(request_id, approver, verdict, comment, config.policy)
    db_session().commit()
    return queries.shown(db_session(), request, config)


@bp.post("/<request_id>/approve")
@require_broker_token
@bp.arguments(DecisionRequestSchema, error_status_code=400)
@bp.response(200, ApprovalSchema)
@problem_responses(bp, 400, 401, 403, 404, 409, 413, 415, 503)
def approve(body: dict[str, Any], request_id: str) -> dict[str, Any]:
    return _decide(request_id, APPROVE, body["comment"])


@bp.post("/<request_id>/deny")
@require_broker_token
@bp.arguments(DecisionRequestSchema, error_status_code=400)
@bp.response(200, ApprovalSchema)
@problem_responses(bp, 400, 401, 403, 404, 409, 413, 415, 503)
def deny(body: dict[str, Any], request_id: str) -> dict[str, Any]:
    return _decide(request_id, DENY, body["comment"])
