"""Renewing a lease: judged again as it is now (policy, windows, freezes), then extended at Vault, then
recorded. A renewal the policy no longer grants ends the lease (``ending``).

No transaction is held across the Vault call: the decision commits first, and the new expiry is written
under the row lock afterwards, only if the lease is still active.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.ledger import Actor, Ledger
from app.clock import Clock
from app.db import committing
from app.decision.approvals import break_glass_renewal
from app.decision.policy import Decision, renewal_decision
from app.decision.reasons import NO_POLICY, Reason
from app.errors import NotFound, PolicyDenied
from app.identity.claims import ref_problem
from app.identity.workload import VerifiedToken, WorkloadIdentity
from app.instants import format_instant
from app.leases import ending
from app.leases.guards import require_active, require_owner, require_unexpired
from app.leases.issuance import count_live
from app.leases.models import Lease, LeaseStatus
from app.policies.models import Policy
from app.policies.service import to_view
from app.vault.port import SecretBackend, VaultRejected
from app.windows.calendar import Calendar


def renew_lease(
    session: Session,
    vault: SecretBackend,
    clock: Clock,
    lease_id: str,
    token: VerifiedToken,
    ttl: timedelta | None,
    *,
    source_address: str | None = None,
) -> Lease:
    """``source_address``: the renewing request's client address; a policy's ``source_networks`` is checked
    against it, not against the address at issuance, so a renewal from another network is denied."""
    identity = token.identity
    actor = Actor("ci", identity.actor_id())
    with committing(session):
        lease = session.get(Lease, lease_id)
        if lease is None:
            raise NotFound(f"no lease {lease_id!r}")
        require_owner(lease, identity)
        now = clock.now()
        require_unexpired(lease, now)
        policy = session.scalar(select(Policy).where(Policy.name == lease.policy))
        decision = _renewal_decision(session, lease, policy, identity, ttl, now, source_address)
        if not decision.allowed or decision.grant is None:
            Ledger(session, clock).append(
                "lease.renew_denied",
                actor=actor,
                decision="deny",
                reasons=decision.reasons,
                details={"identity": identity.to_dict(), "source_address": source_address},
                **ending.lease_facts(lease),
            )
            session.commit()
            ending.end_lease(
                session,
                vault,
                clock,
                lease_id,
                final_status=LeaseStatus.REVOKED,
                end_reason="policy_changed",
                actor=actor,
            )
            raise PolicyDenied("The renewal is denied; the lease was revoked.", reasons=decision.reasons)
        grant = decision.grant
        handle = ending.handle_of(lease)
    if handle is not None:
        try:
            vault.renew(handle, ttl=grant.expires_at - now)
        except VaultRejected as error:
            # Vault no longer knows the credential because the lease ended or ran out meanwhile (a
            # worker revoked it, or Vault's TTL ended it first): the lease's answer (409), not Vault's.
            # Caught at the instant its TTL runs out, OpenBao says "invalid request", not "not found".
            if error.error_class in ("not_found", "invalid_request"):
                with committing(session):
                    current = ending.lock_lease(session, lease_id)
                    assert current is not None
                    require_unexpired(current, clock.now())
            raise
    with committing(session):
        locked = ending.lock_lease(session, lease_id)
        assert locked is not None
        require_active(locked)
        locked.expires_at = grant.expires_at
        locked.ttl_seconds = round(grant.ttl.total_seconds())
        locked.bounded_by = grant.bounded_by
        locked.renewals += 1
        locked.source_address = source_address
        locked.updated_at = now
        Ledger(session, clock).append(
            "lease.renewed",
            actor=actor,
            decision="allow",
            details={
                "expires_at": format_instant(grant.expires_at),
                "bounded_by": grant.bounded_by,
                "source_address": source_address,
            },
            **ending.lease_facts(locked),
        )
    return locked


def _renewal_decision(
    session: Session,
    lease: Lease,
    policy: Policy | None,
    identity: WorkloadIdentity,
    ttl: timedelta | None,
    now: datetime,
    source_address: str | None,
) -> Decision:
    if policy is None:
        return Decision.denied([Reason(NO_POLICY, f"policy {lease.policy!r} no longer exists")])
    view = to_view(policy)
    if lease.break_glass:  # its windows and freezes stay excused, its life capped (docs/API.md)
        return break_glass_renewal(
            identity,
            ttl,
            view,
            Calendar.load(session).facts(view, now),
            now=now,
            secret=lease.secret,
            issued_at=lease.issued_at,
            ref_problem=ref_problem(identity),
            source_address=source_address,
        )
    return renewal_decision(
        identity,
        ttl,
        view,
        Calendar.load(session).facts(view, now),
        now=now,
        secret=lease.secret,
        issued_at=lease.issued_at,
        active_count=count_live(session, policy.name),
        ref_problem=ref_problem(identity),
        source_address=source_address,
    )
