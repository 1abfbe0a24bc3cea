"""How a lease ends: intent first (``revoking``), Vault's confirmation second, the ledger event last.

A lease reads ``expired``, ``released`` or ``revoked`` only after Vault confirmed the revocation
(invariant 3). Until then it is ``revoking`` and whoever sweeps next retries with backoff, without limit.
Revocation at Vault is idempotent, so two sweepers may both call it; the row lock in :func:`confirm_end`
lets only one of them write the end event.

:func:`end_lease` and :func:`finish_revocation` end one lease now (release, an admin's revoke, a denied
renewal); they own their transactions on the session they are given, as every lease operation does
(docs/ARCHITECTURE.md, "Who changes lease state, and who commits").
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.ledger import SYSTEM, Actor, EventSubject, Ledger
from app.clock import Clock
from app.db import committing
from app.errors import NotFound
from app.instants import format_instant
from app.leases.guards import require_active
from app.leases.models import Lease, LeaseStatus
from app.vault.port import SecretBackend, VaultError, VaultHandle

END_ACTIONS = {
    LeaseStatus.EXPIRED: "lease.expired",
    LeaseStatus.RELEASED: "lease.released",
    LeaseStatus.REVOKED: "lease.revoked",
    LeaseStatus.FAILED: "lease.issue_failed",
}
BACKOFF_BASE = timedelta(seconds=1)
BACKOFF_CAP = timedelta(minutes=3)


def retry_delay(attempts: int, *, rng: random.Random | None = None) -> timedelta:
    """Exponential backoff with jitter: about 1 s, 2 s, 4 s ... capped at three minutes."""
    ceiling: timedelta = min(BACKOFF_CAP, BACKOFF_BASE * (2 ** min(attempts, 16)))
    jitter: float = 0.5 + 0.5 * (rng or random).random()
    return ceiling * jitter


def lock_lease(session: Session, lease_id: str) -> Lease | None:
    # populate_existing: the session may still hold this lease as an earlier transaction read it (sessions
    # keep objects across commits), and the row lock must come with the row as it is now: otherwise a lease
    # a worker ended meanwhile still reads active, and is renewed or ended a second time.
    query = select(Lease).where(Lease.id == lease_id).with_for_update()
    return session.scalar(query.execution_options(populate_existing=True))


def lease_facts(lease: Lease) -> EventSubject:
    """The ledger columns every lease event carries."""
    return {
        "lease_id": lease.id,
        "policy": lease.policy,
        "secret": lease.secret,
        "repository": lease.repository,
        "ref": lease.ref,
        "branch": lease.branch,
    }


def begin_end(
    lease: Lease,
    *,
    final_status: LeaseStatus,
    end_reason: str,
    now: datetime,
    note: str | None = None,
) -> None:
    """Mark the intent to end; the credential still works until :func:`revoke_at_vault` succeeds."""
    lease.status = LeaseStatus.REVOKING
    lease.pending_status = final_status
    lease.end_reason = end_reason
    lease.revoke_note = note
    lease.next_attempt_at = now
    lease.updated_at = now


def handle_of(lease: Lease) -> VaultHandle | None:
    if lease.secret_kind == "token" and lease.vault_accessor:
        return VaultHandle("token", accessor=lease.vault_accessor, lease_id=lease.vault_lease_id)
    if lease.secret_kind == "dynamic" and lease.vault_lease_id:
        return VaultHandle("dynamic", lease_id=lease.vault_lease_id)
    return None


def revoke_at_vault(vault: SecretBackend, lease: Lease) -> None:
    """Revoke whatever Vault holds for this lease; raise ``VaultError`` when Vault did not confirm."""
    handle = handle_of(lease)
    if handle is not None:
        vault.revoke(handle)
    elif lease.secret_kind == "token":
        # The broker stopped between the write-ahead row and storing the handle: revoke the tokens of the
        # broker's role that no lease claims (app/vault/role_tokens.py).
        vault.revoke_by_lease_id(lease.id)
    # kv: a static value has nothing to revoke at Vault. dynamic without a lease id: nothing was stored,
    # so nothing can be found; Vault's own TTL on the role ends it (see SecretBackend.revoke_by_lease_id).


def confirm_end(
    session: Session, ledger: Ledger, lease: Lease, *, now: datetime, actor: Actor = SYSTEM
) -> bool:
    """Record Vault's confirmation. False when someone else already did (the lease is no longer revoking)."""
    if lease.status != LeaseStatus.REVOKING or lease.pending_status is None:
        return False
    final = LeaseStatus(lease.pending_status)
    lease.status = final
    lease.pending_status = None
    lease.ended_at = now
    lease.next_attempt_at = None
    lease.updated_at = now
    details: dict[str, object] = {"end_reason": lease.end_reason, "vault_confirmed": True}
    if lease.revoke_note:
        details["note"] = lease.revoke_note
    if lease.revoke_attempts:
        details["attempts"] = lease.revoke_attempts + 1
    ledger.append(END_ACTIONS[final], actor=actor, decision=None, details=details, **lease_facts(lease))
    return True


def record_failure(ledger: Ledger, lease: Lease, error: VaultError, *, now: datetime) -> None:
    lease.revoke_attempts += 1
    lease.last_error = error.error_class
    lease.next_attempt_at = now + retry_delay(lease.revoke_attempts)
    lease.updated_at = now
    ledger.append(
        "lease.revoke_failed",
        actor=SYSTEM,
        details={
            "error_class": error.error_class,
            "attempt": lease.revoke_attempts,
            "next_attempt_at": format_instant(lease.next_attempt_at),
        },
        **lease_facts(lease),
    )


def end_lease(
    session: Session,
    vault: SecretBackend,
    clock: Clock,
    lease_id: str,
    *,
    final_status: LeaseStatus,
    end_reason: str,
    actor: Actor,
    note: str | None = None,
) -> Lease:
    """End one lease now: intent committed, Vault revocation, confirmation with its ledger event.

    Returns the lease, ``revoking`` when Vault did not confirm (the scheduler keeps trying).
    """
    with committing(session):
        lease = lock_lease(session, lease_id)
        if lease is None:
            raise NotFound(f"no lease {lease_id!r}")
        require_active(lease)
        begin_end(lease, final_status=final_status, end_reason=end_reason, now=clock.now(), note=note)
    return finish_revocation(session, vault, clock, lease_id, actor=actor)


def finish_revocation(
    session: Session, vault: SecretBackend, clock: Clock, lease_id: str, *, actor: Actor = SYSTEM
) -> Lease:
    """Revoke at Vault a lease that is ``revoking``, then confirm it or record the failure."""
    with committing(session):
        lease = session.get(Lease, lease_id)
        assert lease is not None
    try:
        revoke_at_vault(vault, lease)
        error: VaultError | None = None
    except VaultError as exc:
        error = exc
    with committing(session):
        locked = lock_lease(session, lease_id)
        assert locked is not None
        ledger = Ledger(session, clock)
        if error is None:
            confirm_end(session, ledger, locked, now=clock.now(), actor=actor)
        elif locked.status == LeaseStatus.REVOKING:
            record_failure(ledger, locked, error, now=clock.now())
    return locked
