"""Dry run of one policy: would it grant this token this secret at this instant? Records only its event."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.ledger import Actor, Ledger
from app.clock import Clock
from app.decision.policy import decide
from app.decision.reasons import Reason
from app.identity.claims import ref_problem
from app.identity.errors import TokenRejected
from app.identity.workload import VerifiedToken
from app.leases.service import count_live
from app.policies.models import Policy
from app.policies.service import to_view
from app.secrets.models import Secret
from app.windows.calendar import Calendar

Verify = Callable[..., VerifiedToken]


@dataclass(frozen=True, slots=True)
class Evaluation:
    allowed: bool
    reasons: tuple[Reason, ...]
    expires_at: datetime | None = None
    bounded_by: str | None = None
    ttl: int | None = None


def evaluate_policy(
    session: Session,
    clock: Clock,
    verify: Verify,
    policy: Policy,
    *,
    token: str,
    secret: str,
    at: datetime | None,
    ttl: timedelta | None,
    actor: Actor,
    source_address: str | None = None,
) -> Evaluation:
    """``at`` defaults to now; the token's own time checks are made as of ``at`` too. The token's ``jti``
    is not used up. ``source_address``: the client address to judge ``source_networks`` against (the
    admin's, not this request's); without it a policy with ``source_networks`` denies, saying so."""
    when = at or clock.now()
    try:
        verified = verify(token, at=when)
    except TokenRejected as rejected:
        evaluation = Evaluation(False, (rejected.reason(),))
        _record(session, clock, policy, secret, evaluation, actor, when, identity=None)
        return evaluation
    identity = verified.identity
    view = to_view(policy)
    known = session.scalar(select(Secret.id).where(Secret.name == secret)) is not None
    candidates = []
    if secret in view.secrets:
        facts = Calendar.load(session).facts(view, when)
        candidates.append((view, facts, count_live(session, policy.name)))
    decision = decide(
        identity,
        ttl,
        candidates,
        now=when,
        secret_known=known,
        ref_problem=ref_problem(identity),
        secret=secret,
        source_address=source_address,
    )
    grant = decision.grant
    evaluation = Evaluation(
        decision.allowed,
        decision.reasons,
        grant.expires_at if grant else None,
        grant.bounded_by if grant else None,
        round(grant.ttl.total_seconds()) if grant else None,
    )
    _record(
        session,
        clock,
        policy,
        secret,
        evaluation,
        actor,
        when,
        identity=identity.to_dict(),
        source_address=source_address,
    )
    return evaluation


def _record(
    session: Session,
    clock: Clock,
    policy: Policy,
    secret: str,
    evaluation: Evaluation,
    actor: Actor,
    at: datetime,
    *,
    identity: dict[str, Any] | None,
    source_address: str | None = None,
) -> None:
    details: dict[str, Any] = {"name": policy.name, "at": at.isoformat()}
    if source_address is not None:
        details["source_address"] = source_address
    if identity is not None:
        details["identity"] = identity
    Ledger(session, clock).append(
        "policy.evaluated",
        actor=actor,
        policy=policy.name,
        secret=secret,
        decision="allow" if evaluation.allowed else "deny",
        reasons=evaluation.reasons,
        details=details,
    )
