"""Ending the active leases a configuration change no longer grants (a policy narrowed, a freeze begun).

Chunk by chunk, leases are locked, judged against the configuration as committed now, marked ``revoking``
and claimed, in one transaction per chunk; once a chunk's intent is committed its revocations start at
Vault, and finished revocations settle while later chunks are marked and revoked (``batch``). A lower
``max_active`` takes nothing back: only what would not be granted at all is ended.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.ledger import Actor
from app.clock import Clock
from app.db import committing, make_session_factory
from app.decision.approvals import CALENDAR_CODES
from app.decision.policy import CalendarFacts, PolicyView, check_policy
from app.decision.reasons import FREEZE_ACTIVE, NO_POLICY, Reason
from app.identity.claims import ref_problem
from app.identity.workload import WorkloadIdentity
from app.leases import batch, ending
from app.leases.models import Lease, LeaseStatus
from app.policies.models import Policy
from app.policies.service import to_view
from app.vault.port import SecretBackend
from app.windows.calendar import Calendar

# Leases marked per transaction: revocations start once the first chunk committed.
MARK_CHUNK = 500


def reevaluate(
    session: Session, vault: SecretBackend, clock: Clock, *, policies: set[str] | None, actor: Actor
) -> int:
    """End the active leases (under ``policies``; None: all) that the configuration as it is now would not
    grant. Returns how many it ended (those Vault did not confirm stay ``revoking`` and are retried)."""
    with committing(session):
        query = select(Lease.id).where(Lease.status == LeaseStatus.ACTIVE).order_by(Lease.id)
        if policies is not None:
            query = query.where(Lease.policy.in_(sorted(policies)))
        lease_ids = list(session.scalars(query))
    if not lease_ids:
        return 0
    settle_sessions = make_session_factory(session.get_bind())
    queue = _mark_doomed(session, clock, lease_ids)
    return batch.revoke_in_pipeline(vault, settle_sessions, clock, queue, actor=actor).ended


def lease_reasons(lease: Lease, view: PolicyView | None, facts: CalendarFacts | None) -> list[Reason]:
    """Why the configuration as it is now would not grant this lease (max_active aside)."""
    if view is None or facts is None:
        return [Reason(NO_POLICY, f"policy {lease.policy!r} no longer exists")]
    identity = WorkloadIdentity.from_dict(lease.identity)
    reasons = check_policy(
        identity,
        view,
        facts=facts,
        active_count=0,
        ref_problem=ref_problem(identity),
        source_address=lease.source_address,  # of the request that last obtained or renewed it
    )
    if lease.secret not in view.secrets:
        reasons.append(Reason(NO_POLICY, f"the policy no longer names secret {lease.secret!r}", view.name))
    if lease.break_glass:  # people excused its windows and freezes; the rest still binds it
        reasons = [r for r in reasons if r.code not in CALENDAR_CODES]
        if view.break_glass is None:
            reasons.append(Reason(NO_POLICY, "the policy no longer allows break-glass", view.name))
    return reasons


def _mark_doomed(session: Session, clock: Clock, lease_ids: Sequence[str]) -> Iterator[Lease]:
    """Yield, chunk after committed chunk, the leases the configuration no longer grants, each already
    marked ``revoking`` and claimed for its place in the queue."""
    queued = 0
    for start in range(0, len(lease_ids), MARK_CHUNK):
        with committing(session):
            query = (
                select(Lease)
                .where(Lease.id.in_(lease_ids[start : start + MARK_CHUNK]))
                .where(Lease.status == LeaseStatus.ACTIVE)  # not ended meanwhile
                .order_by(Lease.id)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
            leases = session.scalars(query).all()
            now = clock.now()
            doomed = _doomed(session, leases, now)
            for lease, reasons in doomed:
                frozen = any(r.code == FREEZE_ACTIVE for r in reasons)
                ending.begin_end(
                    lease,
                    final_status=LeaseStatus.REVOKED,
                    end_reason="freeze" if frozen else "policy_changed",
                    now=now,
                    note=", ".join(sorted({r.code for r in reasons})),
                )
            chunk = [lease for lease, _ in doomed]
            batch.claim_in_queue_order(chunk, now=now, ahead=queued)
        queued += len(chunk)
        yield from chunk


def _doomed(session: Session, leases: Sequence[Lease], now: datetime) -> list[tuple[Lease, list[Reason]]]:
    calendar = Calendar.load(session)
    views = {p.name: to_view(p) for p in session.scalars(select(Policy))}
    facts = {name: calendar.facts(view, now) for name, view in views.items()}
    doomed = []
    for lease in leases:
        reasons = lease_reasons(lease, views.get(lease.policy), facts.get(lease.policy))
        if reasons:
            doomed.append((lease, reasons))
    return doomed
