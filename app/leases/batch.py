"""Ending many leases at once: revoke at Vault on a few threads, then settle them.

Shared by the scheduler's sweeps (small batches: revoke, then settle in one transaction) and by
re-evaluation after a configuration change, where a freeze may end thousands of leases at once
(:func:`revoke_in_pipeline`: chunks settle while Vault works on the next ones). Vault calls run outside any
transaction, and a settle locks the rows again (by id order, so two settles never deadlock), reads them as
they are now, and confirms each one only while it is still ``revoking``, so the ledger has exactly one end
event per lease however many settles race.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.audit.ledger import SYSTEM, Actor, Ledger
from app.clock import Clock
from app.db import transaction
from app.leases import ending
from app.leases.models import Lease, LeaseStatus
from app.vault.port import SecretBackend, VaultError

log = logging.getLogger(__name__)

REVOKE_THREADS = 8
# Long enough for a batch whose Vault calls all time out (50 leases / 8 threads x 5 s), short enough that a
# crashed worker's claimed rows are picked up again soon.
CLAIM_TIMEOUT = timedelta(seconds=20)
# Re-evaluation settles this many revocations per transaction: the ledger lock is held briefly, and the
# database work of one chunk overlaps Vault's work on the next.
SETTLE_CHUNK = 200
# A lease queued for revocation is claimed until its turn could plausibly have come, at this conservative
# pace, plus the scheduler's usual claim: the retry sweep must not revoke it a second time meanwhile.
CLAIM_PER_QUEUED_LEASE = timedelta(milliseconds=10)


@dataclass(slots=True)
class Settled:
    ended: int = 0  # confirmed by Vault and recorded in the ledger
    failed: list[str] = field(default_factory=list)  # error classes of revocations Vault did not confirm
    expiry_lags: list[float] = field(default_factory=list)  # seconds from expires_at to confirmation

    def add(self, other: Settled) -> None:
        self.ended += other.ended
        self.failed.extend(other.failed)
        self.expiry_lags.extend(other.expiry_lags)


def claim_in_queue_order(leases: Sequence[Lease], *, now: datetime, ahead: int = 0) -> None:
    """Claim leases about to be revoked in this order, behind ``ahead`` others already queued: each until
    its expected turn plus the usual claim."""
    for position, lease in enumerate(leases, start=ahead):
        lease.next_attempt_at = now + CLAIM_TIMEOUT + position * CLAIM_PER_QUEUED_LEASE


def revoke_all(
    vault: SecretBackend, leases: Sequence[Lease], *, threads: int = REVOKE_THREADS
) -> dict[str, VaultError | None]:
    """Each lease's revocation outcome at Vault: None when confirmed, else the error."""
    if threads <= 1 or len(leases) <= 1:
        return {lease.id: _revoke_one(vault, lease) for lease in leases}
    with ThreadPoolExecutor(max_workers=min(threads, len(leases)), thread_name_prefix="revoke") as pool:
        outcomes = pool.map(lambda lease: _revoke_one(vault, lease), leases)
        return {lease.id: outcome for lease, outcome in zip(leases, outcomes, strict=True)}


def revoke_in_pipeline(
    vault: SecretBackend,
    sessions: sessionmaker[Session],
    clock: Clock,
    leases: Iterable[Lease],
    *,
    actor: Actor,
    threads: int = REVOKE_THREADS,
    chunk: int = SETTLE_CHUNK,
) -> Settled:
    """Revoke on ``threads`` threads, starting as ``leases`` yields them, while this thread settles the
    finished revocations in order, ``chunk`` at a time, each chunk in its own transaction."""
    settled = Settled()
    done: dict[str, VaultError | None] = {}
    with ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="revoke") as pool:
        queued = [(lease.id, pool.submit(_revoke_one, vault, lease)) for lease in leases]
        for lease_id, revocation in queued:
            done[lease_id] = revocation.result()
            if len(done) >= chunk:
                settled.add(_settle_in_transaction(sessions, clock, done, actor))
                done = {}
    if done:
        settled.add(_settle_in_transaction(sessions, clock, done, actor))
    return settled


def _settle_in_transaction(
    sessions: sessionmaker[Session], clock: Clock, outcomes: Mapping[str, VaultError | None], actor: Actor
) -> Settled:
    with transaction(sessions) as session:
        return settle(session, Ledger(session, clock), outcomes, now=clock.now(), actor=actor)


def _revoke_one(vault: SecretBackend, lease: Lease) -> VaultError | None:
    try:
        ending.revoke_at_vault(vault, lease)
    except VaultError as error:
        return error
    except Exception:
        # A bug, not Vault's answer: keep the lease revoking (it is retried) and say where it happened.
        log.exception(
            "revoking lease %s failed unexpectedly",
            lease.id,
            extra={"lease_id": lease.id, "policy": lease.policy, "repository": lease.repository},
        )
        return VaultError("unexpected_error", "the revocation failed unexpectedly")
    return None


def settle(
    session: Session,
    ledger: Ledger,
    outcomes: Mapping[str, VaultError | None],
    *,
    now: datetime,
    actor: Actor = SYSTEM,
) -> Settled:
    """Confirm or record the failure of each revocation, in the caller's transaction."""
    settled = Settled()
    # populate_existing: the session may hold these leases as an earlier transaction left them (sessions
    # keep objects across commits); a lease another worker ended meanwhile must read ended, not revoking.
    query = select(Lease).where(Lease.id.in_(sorted(outcomes))).order_by(Lease.id).with_for_update()
    rows = session.scalars(query.execution_options(populate_existing=True)).all()
    for lease in rows:
        error = outcomes[lease.id]
        if error is None:
            expiry = lease.pending_status == LeaseStatus.EXPIRED
            if ending.confirm_end(session, ledger, lease, now=now, actor=actor):
                settled.ended += 1
                if expiry:
                    settled.expiry_lags.append((now - lease.expires_at).total_seconds())
        elif lease.status == LeaseStatus.REVOKING:
            ending.record_failure(ledger, lease, error, now=now)
            settled.failed.append(error.error_class)
    return settled
