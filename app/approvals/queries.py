"""Reading approval requests: pages newest first, and one request as the API shows it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import Select, and_, or_, select
from sqlalchemy.orm import Session

from app.approvals.models import ApprovalRequest, ApprovalVote
from app.approvals.service import APPROVE, DENY
from app.config_snapshot.snapshot import ConfigSnapshot
from app.decision.approvals import rule_of
from app.instants import format_instant, parse_instant

FILTERS = ("status", "policy", "secret", "repository")


def filtered(filters: Mapping[str, Any]) -> Select[ApprovalRequest]:
    query = select(ApprovalRequest)
    for name in FILTERS:
        if filters.get(name) is not None:
            query = query.where(getattr(ApprovalRequest, name) == filters[name])
    return query


def page(
    session: Session, filters: Mapping[str, Any], *, limit: int, after: tuple[datetime, str] | None
) -> Sequence[ApprovalRequest]:
    query = filtered(filters)
    if after is not None:
        created, request_id = after
        query = query.where(
            or_(
                ApprovalRequest.created_at < created,
                and_(ApprovalRequest.created_at == created, ApprovalRequest.id < request_id),
            )
        )
    order = (ApprovalRequest.created_at.desc(), ApprovalRequest.id.desc())
    return session.scalars(query.order_by(*order).limit(limit)).all()


def cursor_of(request: ApprovalRequest) -> list[Any]:
    return [format_instant(request.created_at), request.id]


def position(cursor: list[Any]) -> tuple[datetime, str]:
    try:
        return parse_instant(str(cursor[0])), str(cursor[1])
    except ValueError:
        raise ValidationError({"cursor": ["is not a cursor this API returned"]}) from None


def votes_by_request(session: Session, ids: Sequence[str]) -> dict[str, list[ApprovalVote]]:
    found: dict[str, list[ApprovalVote]] = {request_id: [] for request_id in ids}
    if ids:
        query = select(ApprovalVote).where(ApprovalVote.request_id.in_(ids)).order_by(ApprovalVote.id)
        for vote in session.scalars(query):
            found[vote.request_id].append(vote)
    return found


def present(
    request: ApprovalRequest, votes: Sequence[ApprovalVote], approvers: Sequence[str]
) -> dict[str, Any]:
    """The request as ``ApprovalSchema`` dumps it. ``approvers``: who may approve it now."""
    identity = request.identity
    return {
        "id": request.id,
        "kind": request.kind,
        "status": request.status,
        "end_reason": request.end_reason,
        "secret": request.secret,
        "policy": request.policy,
        "required": request.required,
        "approvers": list(approvers),
        "approvals": [v for v in votes if v.verdict == APPROVE],
        "denial": next((v for v in votes if v.verdict == DENY), None),
        "justification": request.justification,
        "workload": {**identity, "run": identity.get("pipeline_id")},
        "lease_id": request.lease_id,
        "created_at": request.created_at,
        "expires_at": request.expires_at,
        "decided_at": request.decided_at,
    }


def approvers_now(request: ApprovalRequest, config: ConfigSnapshot) -> list[str]:
    """Who may approve ``request`` under its policy as configured now (empty: any admin or approver)."""
    policy = config.policy(request.policy)
    rule = rule_of(policy, "break_glass" if request.kind == "break_glass" else "approval") if policy else None
    return list(rule.approvers) if rule is not None else []


def shown(session: Session, request: ApprovalRequest, config: ConfigSnapshot) -> dict[str, Any]:
    votes = votes_by_request(session, [request.id])[request.id]
    return present(request, votes, approvers_now(request, config))


def shown_page(
    session: Session, requests: Sequence[ApprovalRequest], config: ConfigSnapshot
) -> list[dict[str, Any]]:
    votes = votes_by_request(session, [r.id for r in requests])
    return [present(r, votes[r.id], approvers_now(r, config)) for r in requests]
