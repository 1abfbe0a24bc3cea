"""Ending many leases at once: revoke at Vault on a few threads, then settle them in one transaction.

Shared by the scheduler's sweeps and by re-evaluation after a configuration change (a freeze that begins
may end thousands of leases): Vault calls run outside any transaction, and the settle locks the rows again
(by id order, so two settles never deadlock) and confirms each one only while it is still ``revoking``,
so the ledger has exactly one end event per lease however many settles race.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.ledger import SYSTEM, Actor, Ledger
from app.leases import ending
from app.leases.models import Lease, LeaseStatus
from app.vault.port import SecretBackend, VaultError

log = logging.getLogger(__name__)

REVOKE_THREADS = 8


@dataclass(slots=True)
class Settled:
    ended: int = 0  # confirmed by Vault and recorded in the ledger
    failed: list[str] = field(default_factory=list)  # error classes of revocations Vault did not confirm
    expiry_lags: list[float] = field(default_factory=list)  # seconds from expires_at to confirmation


def revoke_all(
    vault: SecretBackend, leases: Sequence[Lease], *, threads: int = REVOKE_THREADS
) -> dict[str, VaultError | None]:
    """Each lease's revocation outcome at Vault: None when confirmed, else the error."""
    if threads <= 1 or len(leases) <= 1:
        return {lease.id: _revoke_one(vault, lease) for lease in leases}
    with ThreadPoolExecutor(max_workers=min(threads, len(leases)), thread_name_prefix="revoke") as pool:
        outcomes = pool.map(lambda lease: _revoke_one(vault, lease), leases)
        return {lease.id: outcome for lease, outcome in zip(leases, outcomes, strict=True)}


def _revoke_one(vault: SecretBackend, lease: Lease) -> VaultError | None:
    try:
        ending.revoke_at_vault(vault, lease)
    except VaultError as error:
        return error
    except Exception:
        # A bug, not Vault's answer: keep the lease revoking (it is retried) and say where it happened.
        log.exception("revoking lease %s failed unexpectedly", lease.id)
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
    rows = session.scalars(
        select(Lease).where(Lease.id.in_(sorted(outcomes))).order_by(Lease.id).with_for_update()
    ).all()
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
