"""How the scheduler ends leases in batches: claim → revoke at Vault → settle.

1. **Claim** (one transaction): select a small batch of due rows with ``FOR UPDATE SKIP LOCKED`` (PostgreSQL;
   rows another worker is claiming right now are passed over, not waited for), mark each ``revoking``
   (``ending.begin_end``) and move its ``next_attempt_at`` forward by the claim timeout, then commit. The
   moved ``next_attempt_at`` is the claim: no other worker's retry sweep takes the row while this one revokes
   it, and if this worker dies the claim runs out and any worker takes it up again.
2. **Revoke** at Vault, outside any transaction, on a few threads. At-least-once: Vault's revocation is
   idempotent, so a second try of a row whose claim ran out costs only a request.
3. **Settle** (one transaction): lock the batch's rows again (by id order, so two settles never deadlock) and
   confirm each revocation (``ending.confirm_end``, which writes the end event only while the row is still
   ``revoking``: exactly once in the ledger) or record the failure with its backoff (``record_failure``).

On SQLite ``with_for_update`` is ignored and every transaction already holds the database's write lock
(``BEGIN IMMEDIATE``); a single worker runs there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.audit.ledger import Ledger
from app.clock import Clock
from app.db import transaction
from app.leases import ending
from app.leases.models import Lease, LeaseStatus
from app.metrics import scheduler_metrics
from app.vault.port import SecretBackend, VaultError

log = logging.getLogger(__name__)

BATCH_SIZE = 50
REVOKE_THREADS = 8
# Long enough for a batch whose Vault calls all time out (50 leases / 8 threads x 5 s), short enough that a
# crashed worker's claimed rows are picked up again soon.
CLAIM_TIMEOUT = timedelta(seconds=20)

# Selects and marks up to ``limit`` rows inside the claim transaction.
Claim = Callable[[Session, datetime, int], Sequence[Lease]]


@dataclass(slots=True)
class SweepResult:
    claimed: int = 0
    ended: int = 0  # confirmed by Vault and recorded in the ledger by this sweep
    failed: int = 0  # Vault did not confirm; retried later with backoff

    def add(self, other: SweepResult) -> None:
        self.claimed += other.claimed
        self.ended += other.ended
        self.failed += other.failed


def sweep(
    sessions: sessionmaker[Session],
    vault: SecretBackend,
    clock: Clock,
    claim: Claim,
    *,
    batch_size: int = BATCH_SIZE,
    threads: int = REVOKE_THREADS,
) -> SweepResult:
    """Claim, revoke and settle batch after batch until a claim comes back short."""
    total = SweepResult()
    while True:
        with transaction(sessions) as session:
            leases = list(claim(session, clock.now(), batch_size))
        if not leases:
            return total
        outcomes = revoke_all(vault, leases, threads=threads)
        result = settle(sessions, clock, outcomes)
        result.claimed = len(leases)
        total.add(result)
        if len(leases) < batch_size:
            return total


def claimed(lease: Lease, now: datetime, claim_timeout: timedelta) -> Lease:
    lease.next_attempt_at = now + claim_timeout
    return lease


def revoke_all(
    vault: SecretBackend, leases: Sequence[Lease], *, threads: int
) -> dict[str, VaultError | None]:
    """Each lease's revocation outcome at Vault: None when confirmed, else the error."""
    if threads <= 1 or len(leases) == 1:
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
    sessions: sessionmaker[Session], clock: Clock, outcomes: dict[str, VaultError | None]
) -> SweepResult:
    """Confirm or record the failure of each revocation; metrics only once the transaction committed."""
    result = SweepResult()
    lags: list[float] = []
    failures: list[str] = []
    with transaction(sessions) as session:
        ledger = Ledger(session, clock)
        now = clock.now()
        rows = session.scalars(
            select(Lease).where(Lease.id.in_(sorted(outcomes))).order_by(Lease.id).with_for_update()
        ).all()
        for lease in rows:
            error = outcomes[lease.id]
            if error is None:
                expiry = lease.pending_status == LeaseStatus.EXPIRED
                if ending.confirm_end(session, ledger, lease, now=now):
                    result.ended += 1
                    if expiry:
                        lags.append((now - lease.expires_at).total_seconds())
            elif lease.status == LeaseStatus.REVOKING:
                ending.record_failure(ledger, lease, error, now=now)
                failures.append(error.error_class)
                result.failed += 1
    metrics = scheduler_metrics()
    for lag in lags:
        metrics.revocation_lag.observe(max(lag, 0.0))
    for error_class in failures:
        metrics.revocations_failed.labels(error_class=error_class).inc()
    if failures:
        log.warning(
            "%d revocation(s) failed at Vault (%s); retrying with backoff", len(failures), failures[0]
        )
    return result
