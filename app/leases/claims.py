"""Claiming an approved request (docs/API.md, "Approvals and break-glass"): who may, in which state, and
what the grant records. The decision itself is the core's (``app.decision.approvals.claim_decision``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from app.approvals.messages import announcement
from app.approvals.models import ApprovalRequest, ApprovalStatus
from app.audit.ledger import Actor
from app.clock import Clock
from app.decision.approvals import APPROVAL, BREAK_GLASS, Kind
from app.decision.identity import WorkloadIdentity
from app.decision.reasons import APPROVAL_DENIED, APPROVAL_EXPIRED, APPROVAL_PENDING, APPROVAL_USED, Reason
from app.errors import BadRequest, Conflict, Forbidden
from app.instants import format_instant
from app.leases.models import Lease
from app.notifications.outbox import enqueue


def kind_of(request: ApprovalRequest) -> Kind:
    return BREAK_GLASS if request.kind == BREAK_GLASS else APPROVAL


def requested_ttl(request: ApprovalRequest) -> timedelta | None:
    """The ttl the workload asked for when it made the request."""
    seconds = request.requested_ttl_seconds
    return None if seconds is None else timedelta(seconds=seconds)


def refusal(
    request: ApprovalRequest, identity: WorkloadIdentity, secret: str, now: datetime
) -> Reason | None:
    """Why the request obtains no lease for this claim: a denial reason (403) when it was denied or has
    expired; other refusals raise at once — another workload's request (403), another secret (400), a
    request still pending or already used (409)."""
    if request.workload_key != identity.workload_key():
        raise Forbidden("This approval request belongs to another workload.")
    if request.secret != secret:
        raise BadRequest(
            "The approval request is for another secret.",
            errors={"secret": [f"the approval request is for {request.secret!r}"]},
        )
    if request.status == ApprovalStatus.DENIED:
        return Reason(APPROVAL_DENIED, "the approval request was denied", request.policy)
    expired = request.status == ApprovalStatus.EXPIRED or (
        request.status in (ApprovalStatus.PENDING, ApprovalStatus.APPROVED) and request.expires_at <= now
    )
    if expired:
        why = f" ({request.end_reason})" if request.end_reason else ""
        return Reason(APPROVAL_EXPIRED, f"the approval request expired{why}", request.policy)
    if request.status == ApprovalStatus.PENDING:
        reason = Reason(
            APPROVAL_PENDING,
            f"the approval request is still pending; it needs {request.required}",
            request.policy,
        )
        raise Conflict("The approval request is still pending.", reasons=[reason])
    if request.status == ApprovalStatus.USED:
        reason = Reason(APPROVAL_USED, "the approval request already obtained its lease", request.policy)
        raise Conflict("The approval request already obtained its lease.", reasons=[reason])
    return None


def grant_details(request: ApprovalRequest, approvers: list[str]) -> dict[str, Any]:
    """What the ``lease.granted`` event says of the approval (``break_glass`` for an exception)."""
    details: dict[str, Any] = {"approval": request.id}
    if request.kind == BREAK_GLASS:
        details["break_glass"] = {"justification": request.justification, "approvers": approvers}
    else:
        details["approvers"] = approvers
    return details


def announce_break_glass(
    clock: Clock, request: ApprovalRequest, approvers: list[str]
) -> Callable[[Session, Lease], None]:
    """Queue the notification of a break-glass lease, in the transaction that grants it."""

    def queue(session: Session, lease: Lease) -> None:
        actor = Actor("ci", WorkloadIdentity.from_dict(lease.identity).actor_id())
        text, fields = announcement("break_glass.granted", request, approvers, actor)
        fields["lease"] = {
            "id": lease.id,
            "expires_at": format_instant(lease.expires_at),
            "bounded_by": lease.bounded_by,
        }
        enqueue(session, clock, "break_glass.granted", text, fields)

    return queue
