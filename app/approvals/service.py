"""Approval requests: opened by lease requests, decided by people, ended by time or a configuration change.

Services flush and never commit (docs/ARCHITECTURE.md, "Who commits"). Every state change appends its
``approval.*`` event (``details.approval``: the request's id) and, when notifications are on, queues its
notification in the same transaction. Deciding a request locks its row first, so parallel approvals on
PostgreSQL record at most ``required`` approvals and one ``approved`` transition.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.approvals.messages import announcement
from app.approvals.models import ApprovalRequest, ApprovalStatus, ApprovalVote
from app.audit.ledger import SYSTEM, Actor, Ledger
from app.clock import Clock
from app.decision.approvals import Kind, Pending, approver_refusal, is_approved, rule_of, standing_reasons
from app.decision.identity import WorkloadIdentity
from app.decision.policy import CalendarFacts, PolicyView
from app.decision.reasons import Reason
from app.errors import Conflict, Forbidden, NotFound
from app.identity.claims import ref_problem
from app.notifications.outbox import enqueue

APPROVE, DENY = "approve", "deny"


def new_request_id() -> str:
    return "apr_" + secrets.token_urlsafe(18)


def open_key(identity: WorkloadIdentity, secret: str) -> str:
    return f"{identity.workload_key()}:{secret}"


@dataclass(frozen=True, slots=True)
class Approver:
    """The broker token deciding a request."""

    name: str
    role: str
    ci_login: str | None

    def actor(self) -> Actor:
        return Actor(self.role, self.name)


PolicyLookup = Callable[[str], PolicyView | None]
FactsLookup = Callable[[PolicyView, datetime], CalendarFacts]


class ApprovalService:
    def __init__(self, session: Session, clock: Clock, *, notify: bool = False) -> None:
        """``notify``: queue notifications (the deployment has a webhook, TRANSOM_NOTIFY_WEBHOOK_URL)."""
        self._session = session
        self._clock = clock
        self._ledger = Ledger(session, clock)
        self._notify = notify

    # --- reading -------------------------------------------------------------------------------------

    def get(self, request_id: str, *, workload: WorkloadIdentity | None = None) -> ApprovalRequest:
        """The request; a workload may only see its own (``None``: a broker token)."""
        found = self._session.get(ApprovalRequest, request_id)
        if found is None:
            raise NotFound(f"no approval request {request_id!r}")
        if workload is not None and found.workload_key != workload.workload_key():
            raise Forbidden("This approval request belongs to another workload.")
        return found

    def votes(self, request_id: str) -> list[ApprovalVote]:
        query = select(ApprovalVote).where(ApprovalVote.request_id == request_id).order_by(ApprovalVote.id)
        return list(self._session.scalars(query))

    def find_open(self, identity: WorkloadIdentity, secret: str) -> ApprovalRequest | None:
        query = select(ApprovalRequest).where(ApprovalRequest.open_key == open_key(identity, secret))
        return self._session.scalar(query)

    # --- opening -------------------------------------------------------------------------------------

    def open_request(
        self,
        identity: WorkloadIdentity,
        pending: Pending,
        *,
        secret: str,
        justification: str | None,
        requested_ttl: timedelta | None,
        source_address: str | None,
        actor: Actor,
    ) -> ApprovalRequest:
        """The workload's open request for ``secret``, or a new one under ``pending``. Flushed; a parallel
        request of the same workload that won the race is answered instead (its row is unique)."""
        existing = self.find_open(identity, secret)
        if existing is not None:
            return existing
        now = self._clock.now()
        request = ApprovalRequest(
            id=new_request_id(),
            kind=pending.kind,
            status=ApprovalStatus.PENDING,
            secret=secret,
            policy=pending.policy,
            required=pending.rule.required,
            open_key=open_key(identity, secret),
            workload_key=identity.workload_key(),
            identity=identity.to_dict(),
            repository=identity.repository,
            ref=identity.ref,
            actor=identity.actor,
            source_address=source_address,
            justification=justification if pending.kind == "break_glass" else None,
            requested_ttl_seconds=None if requested_ttl is None else int(requested_ttl.total_seconds()),
            created_at=now,
            expires_at=now + pending.rule.timeout,
            updated_at=now,
        )
        try:
            with self._session.begin_nested():
                self._session.add(request)
                self._session.flush()
        except IntegrityError:
            raced = self.find_open(identity, secret)
            if raced is None:
                raise
            return raced
        self._record(request, "approval.requested", actor, extra={"approvers": list(pending.rule.approvers)})
        return request

    # --- deciding ------------------------------------------------------------------------------------

    def decide(
        self, request_id: str, approver: Approver, verdict: str, comment: str | None, policy: PolicyLookup
    ) -> ApprovalRequest:
        """Record ``approver``'s ``verdict`` (approve or deny). 403 with ``self_approval`` or
        ``not_an_approver``; 409 when the request is not pending or the approver already decided it."""
        request = self._locked(request_id)
        now = self._clock.now()
        view = policy(request.policy)
        rule = rule_of(view, _kind(request)) if view is not None else None
        requester = WorkloadIdentity.from_dict(request.identity)
        if rule is not None:
            refusal = approver_refusal(
                rule, name=approver.name, role=approver.role, ci_login=approver.ci_login, requester=requester
            )
            if refusal is not None:
                raise Forbidden(f"{approver.name!r} may not decide this request.", reasons=[refusal])
        if request.status != ApprovalStatus.PENDING or request.expires_at <= now:
            shown = ApprovalStatus.EXPIRED if request.status == ApprovalStatus.PENDING else request.status
            raise Conflict(f"The approval request is {shown}, not pending.")
        if rule is None:
            raise Conflict("The request's policy no longer asks for this approval; it is ending.")
        earlier = self.votes(request.id)
        if any(
            v.approver == approver.name or (approver.ci_login and v.ci_login == approver.ci_login)
            for v in earlier
        ):
            raise Conflict("This approver already decided this request.")
        vote = ApprovalVote(
            request_id=request.id,
            approver=approver.name,
            ci_login=approver.ci_login,
            verdict=verdict,
            comment=comment,
            at=now,
        )
        self._session.add(vote)
        request.required = rule.required  # the policy's rule as it is now
        approvals = [v.approver for v in [*earlier, vote] if v.verdict == APPROVE]
        if verdict == DENY:
            self._end(request, ApprovalStatus.DENIED, "denied", now)
            self._record(
                request, "approval.denied", approver.actor(), extra={"comment": comment}, notify=True
            )
        elif is_approved(approvals, rule.required):
            request.status = ApprovalStatus.APPROVED
            request.decided_at = now
            # The workload claims it next; give it the time a request may wait, from now.
            request.expires_at = now + rule.timeout
            request.updated_at = now
            self._record(
                request, "approval.approved", approver.actor(), extra={"comment": comment}, notify=True
            )
        else:
            request.updated_at = now
            self._record(request, "approval.approved", approver.actor(), extra={"comment": comment})
        self._session.flush()
        return request

    # --- using and ending ----------------------------------------------------------------------------

    def lock_for_claim(self, request_id: str) -> ApprovalRequest:
        return self._locked(request_id)

    def mark_used(self, request: ApprovalRequest, lease_id: str, actor: Actor) -> None:
        self._end(request, ApprovalStatus.USED, None, self._clock.now())
        request.lease_id = lease_id
        self._record(request, "approval.used", actor, lease_id=lease_id)

    def reopen(self, request_id: str) -> None:
        """A claim whose lease Vault did not issue: the approval stands for the next claim."""
        request = self._locked(request_id)
        if request.status == ApprovalStatus.USED:
            request.status = ApprovalStatus.APPROVED
            request.open_key = open_key(WorkloadIdentity.from_dict(request.identity), request.secret)
            request.lease_id = None
            request.end_reason = None
            request.updated_at = self._clock.now()

    def expire(self, request: ApprovalRequest, reason: str, *, reasons: Sequence[Reason] = ()) -> None:
        """End an open request: ``timeout`` or ``policy_changed``."""
        self._end(request, ApprovalStatus.EXPIRED, reason, self._clock.now())
        self._record(
            request, "approval.expired", SYSTEM, reasons=reasons, extra={"end_reason": reason}, notify=True
        )

    def expire_due(self, *, limit: int = 200) -> int:
        """End the open requests past their ``expires_at`` (the scheduler's sweep)."""
        now = self._clock.now()
        query = (
            select(ApprovalRequest)
            .where(ApprovalRequest.status.in_([ApprovalStatus.PENDING, ApprovalStatus.APPROVED]))
            .where(ApprovalRequest.expires_at <= now)
            .order_by(ApprovalRequest.expires_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        due = list(self._session.scalars(query))
        for request in due:
            self.expire(request, "timeout")
        return len(due)

    def end_ungranted(self, policy: PolicyLookup, facts: FactsLookup, *, policies: set[str] | None) -> int:
        """After a configuration change: end the open requests (under ``policies``; None: all) whose policy
        as it is now would no longer grant them."""
        query = select(ApprovalRequest).where(
            ApprovalRequest.status.in_([ApprovalStatus.PENDING, ApprovalStatus.APPROVED])
        )
        if policies is not None:
            query = query.where(ApprovalRequest.policy.in_(sorted(policies)))
        now = self._clock.now()
        ended = 0
        for request in self._session.scalars(query.with_for_update()).all():
            view = policy(request.policy)
            identity = WorkloadIdentity.from_dict(request.identity)
            reasons = standing_reasons(
                _kind(request),
                identity,
                view,
                facts(view, now) if view is not None else None,
                secret=request.secret,
                ref_problem=ref_problem(identity),
                source_address=request.source_address,
            )
            if reasons:
                self.expire(request, "policy_changed", reasons=reasons)
                ended += 1
        return ended

    # --- helpers -------------------------------------------------------------------------------------

    def _locked(self, request_id: str) -> ApprovalRequest:
        query = (
            select(ApprovalRequest)
            .where(ApprovalRequest.id == request_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        request = self._session.scalar(query)
        if request is None:
            raise NotFound(f"no approval request {request_id!r}")
        return request

    def _end(
        self, request: ApprovalRequest, status: ApprovalStatus, reason: str | None, now: datetime
    ) -> None:
        request.status = status
        request.end_reason = reason
        request.open_key = None
        request.decided_at = request.decided_at or now
        request.updated_at = now

    def _record(
        self,
        request: ApprovalRequest,
        action: str,
        actor: Actor,
        *,
        lease_id: str | None = None,
        reasons: Sequence[Reason] = (),
        extra: dict[str, Any] | None = None,
        notify: bool = False,
    ) -> None:
        approvals = self.approvals_of(request.id)
        details = {
            "approval": request.id,
            "kind": request.kind,
            "status": request.status,
            "required": request.required,
            "approvals": approvals,
            "justification": request.justification,
            "identity": request.identity,
            **(extra or {}),
        }
        self._ledger.append(
            action,
            actor=actor,
            lease_id=lease_id,
            policy=request.policy,
            secret=request.secret,
            repository=request.repository,
            ref=request.ref,
            branch=request.identity.get("branch") or request.identity.get("tag"),
            reasons=reasons,
            details=details,
        )
        if self._notify and (notify or action == "approval.requested"):
            text, fields = announcement(action, request, approvals, actor)
            enqueue(self._session, self._clock, action, text, fields)

    def approvals_of(self, request_id: str) -> list[str]:
        self._session.flush()
        query = (
            select(ApprovalVote.approver)
            .where(ApprovalVote.request_id == request_id, ApprovalVote.verdict == APPROVE)
            .order_by(ApprovalVote.id)
        )
        return list(self._session.scalars(query))


def _kind(request: ApprovalRequest) -> Kind:
    return "break_glass" if request.kind == "break_glass" else "approval"
