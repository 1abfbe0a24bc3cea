from __future__ import annotations

from typing import Any

from flask import Response, jsonify, make_response
from flask_smorest import Blueprint

from app.approvals import queries as approval_queries
from app.approvals.models import ApprovalRequest
from app.approvals.schemas import PendingApprovalSchema
from app.auth import (
    current_caller,
    current_workload,
    require_admin,
    require_reader,
    require_workload,
    require_workload_or_reader,
)
from app.exports import export_response
from app.leases import queries
from app.leases.models import Lease, LeaseStatus
from app.leases.schemas import (
    BulkRevokeRequestSchema,
    BulkRevokeSchema,
    IssuedLeaseSchema,
    LeaseDetailSchema,
    LeasePageSchema,
    LeaseQuerySchema,
    LeaseRequestSchema,
    RenewRequestSchema,
    RevokeRequestSchema,
)
from app.leases.service import IssuedLease, LeaseRequest
from app.leases.wiring import lease_service
from app.request_context import config_snapshot, current_actor, db_session, runtime
from app.schemas import EXPORT_SCHEMA, decode_cursor, encode_cursor, problem_responses

bp = Blueprint("leases", __name__, url_prefix="/v1/leases", description="Just-in-time leases")


@bp.post("")
@require_workload
@bp.arguments(LeaseRequestSchema, error_status_code=400)
@bp.response(201, IssuedLeaseSchema)
@bp.alt_response(200, schema=IssuedLeaseSchema, description="An idempotent replay of an active lease")
@bp.alt_response(
    202, schema=PendingApprovalSchema, description="People must approve it first; the token is not used"
)
@problem_responses(bp, 400, 401, 403, 404, 409, 413, 415, 502, 503)
def create_lease(body: dict[str, Any]) -> tuple[IssuedLease, int] | Response:
    issued = lease_service().request_lease(current_workload(), LeaseRequest(**body))
    if isinstance(issued, ApprovalRequest):
        shown = approval_queries.shown(db_session(), issued, config_snapshot())
        return make_response(jsonify(PendingApprovalSchema().dump({"approval": shown})), 202)
    return issued, 200 if issued.replayed else 201


@bp.get("/<lease_id>")
@require_workload_or_reader
@bp.response(200, LeaseDetailSchema)
@problem_responses(bp, 401, 403, 404, 503)
def get_lease(lease_id: str) -> Lease:
    workload = None if current_caller() is not None else current_workload().identity
    return lease_service().get_lease(lease_id, workload=workload)


@bp.post("/<lease_id>/renew")
@require_workload
@bp.arguments(RenewRequestSchema, error_status_code=400)
@bp.response(200, LeaseDetailSchema)
@problem_responses(bp, 400, 401, 403, 404, 409, 413, 415, 502, 503)
def renew_lease(body: dict[str, Any], lease_id: str) -> Lease:
    return lease_service().renew_lease(lease_id, current_workload(), body["ttl"])


@bp.post("/<lease_id>/release")
@require_workload
@bp.response(200, LeaseDetailSchema)
@bp.alt_response(202, schema=LeaseDetailSchema, description="Vault did not confirm yet; the broker retries")
@problem_responses(bp, 401, 403, 404, 409, 415, 503)
def release_lease(lease_id: str) -> tuple[Lease, int]:
    lease = lease_service().release_lease(lease_id, current_workload())
    return lease, 202 if lease.status == LeaseStatus.REVOKING else 200


@bp.post("/<lease_id>/revoke")
@require_admin
@bp.arguments(RevokeRequestSchema, error_status_code=400)
@bp.response(200, LeaseDetailSchema)
@bp.alt_response(202, schema=LeaseDetailSchema, description="Vault did not confirm yet; the broker retries")
@problem_responses(bp, 400, 401, 403, 404, 409, 413, 415, 503)
def revoke_lease(body: dict[str, Any], lease_id: str) -> tuple[Lease, int]:
    lease = lease_service().revoke_lease(lease_id, note=body["reason"], actor=current_actor())
    return lease, 202 if lease.status == LeaseStatus.REVOKING else 200


@bp.post("/revoke")
@require_admin
@bp.arguments(BulkRevokeRequestSchema, error_status_code=400)
@bp.response(200, BulkRevokeSchema)
@problem_responses(bp, 400, 401, 403, 413, 415, 503)
def bulk_revoke(body: dict[str, Any]) -> dict[str, int]:
    filters = {**body["filter"], "status": LeaseStatus.ACTIVE}
    ids = list(db_session().scalars(queries.filtered(filters).with_only_columns(Lease.id)))
    revoked = lease_service().revoke_matching(ids, note=body["reason"], actor=current_actor())
    return {"revoked": revoked}


@bp.get("")
@require_reader
@bp.arguments(LeaseQuerySchema, location="query", error_status_code=400)
@bp.response(200, LeasePageSchema)
@bp.alt_response(200, schema=EXPORT_SCHEMA, content_type="text/csv")
@bp.alt_response(200, schema=EXPORT_SCHEMA, content_type="application/x-ndjson")
@problem_responses(bp, 400, 401, 403, 503)
def list_leases(query: dict[str, Any]) -> dict[str, Any] | Response:
    if query["format"] != "json":
        db_session().commit()  # the stream reads on its own; hold nothing of this request's open meanwhile
        return export_response(
            lambda: queries.export_rows(runtime().read_sessions, query),
            query["format"],
            queries.EXPORT_COLUMNS,
            "leases",
        )
    after = queries.position(decode_cursor(query["cursor"], 2)) if query["cursor"] else None
    rows = queries.page(db_session(), query, limit=query["limit"] + 1, after=after)
    items = rows[: query["limit"]]
    more = len(rows) > query["limit"]
    return {"items": items, "next_cursor": encode_cursor(queries.cursor_of(items[-1])) if more else None}
