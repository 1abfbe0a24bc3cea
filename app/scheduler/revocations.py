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
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from app.audit.ledger import Ledger
from app.clock import Clock
from app.db import transaction
from app.leases import batch
from app.leases.models import Lease
from app.metrics import scheduler_metrics
from app.vault.port import SecretBackend, VaultError

log = logging.getLogger(__name__)

BATCH_SIZE = 50
REVOKE_THREADS = batch.REVOKE_THREADS
CLAIM_TIMEOUT = batch.CLAIM_TIMEOUT

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
        outcomes = batch.revoke_all(vault, leases, threads=threads)
        result = settle(sessions, clock, outcomes)
        result.claimed = len(leases)
        total.add(result)
        if len(leases) < batch_size:
            return total


def claimed(lease: Lease, now: datetime, claim_timeout: timedelta) -> Lease:
    lease.next_attempt_at = now + claim_timeout
    return lease


def settle(
    sessions: sessionmaker[Session], clock: Clock, outcomes: dict[str, VaultError | None]
) -> SweepResult:
    """Confirm or record the failure of each revocation; metrics only once the transaction committed."""
    with transaction(sessions) as session:
        settled = batch.settle(session, Ledger(session, clock), outcomes, now=clock.now())
    metrics = scheduler_metrics()
    for lag in settled.expiry_lags:
        metrics.revocation_lag.observe(max(lag, 0.0))
    for error_class in settled.failed:
        metrics.revocations_failed.labels(error_class=error_class).inc()
    if settled.failed:
        log.warning(
            "%d revocation(s) failed at Vault (%s); retrying with backoff",
            len(settled.failed),
            settled.failed[0],
        )
    return SweepResult(ended=settled.ended, failed=len(settled.failed))
