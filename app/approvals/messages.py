"""What a notification says about a request: a line for people (Slack's ``text``) and structured fields.

Names and the workload's identity only — never a secret value, a token or a credential (invariant 4).
Identity values are the token's, so they are escaped and cut like every identity value shown.
"""

from __future__ import annotations

from typing import Any

from app.approvals.models import ApprovalRequest
from app.audit.ledger import Actor
from app.decision.messages import escape
from app.instants import format_instant

_HEADLINES = {
    "approval.requested": "Approval requested",
    "approval.approved": "Approved",
    "approval.denied": "Denied",
    "approval.expired": "Expired",
    "break_glass.granted": "Break-glass lease granted",
}


def describe(request: ApprovalRequest) -> dict[str, Any]:
    """The request as notifications and pages show it."""
    identity = request.identity
    return {
        "id": request.id,
        "kind": request.kind,
        "status": request.status,
        "policy": request.policy,
        "secret": request.secret,
        "required": request.required,
        "repository": identity.get("repository"),
        "ref": identity.get("ref"),
        "actor": identity.get("actor"),
        "run": identity.get("pipeline_id"),
        "justification": request.justification,
        "expires_at": format_instant(request.expires_at),
    }


def announcement(
    event: str, request: ApprovalRequest, approvals: list[str], actor: Actor
) -> tuple[str, dict[str, Any]]:
    """``(text, fields)`` of the notification of ``event`` about ``request``."""
    identity = request.identity
    who = escape(str(identity.get("actor") or "unknown"))
    where = (
        f"{escape(str(identity.get('repository') or 'unknown'))} ({escape(str(identity.get('ref') or '?'))})"
    )
    kind = "break-glass exception" if request.kind == "break_glass" else "lease"
    text = (
        f"{_HEADLINES.get(event, event)}: {kind} of {request.secret} under {request.policy} "
        f"for {where}, run {escape(str(identity.get('pipeline_id') or '?'))} by {who}; "
        f"{len(approvals)}/{request.required} approvals"
    )
    if request.justification:
        text += f'; justification: "{escape(request.justification)}"'
    if event == "approval.requested":
        text += f". Approve: transom approvals approve {request.id}"
    fields = {
        "approval": {**describe(request), "approvals": approvals},
        "by": {"type": actor.type, "id": actor.id},
    }
    return text, fields
