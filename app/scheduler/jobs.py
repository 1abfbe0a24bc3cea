"""The scheduler's jobs: plain functions over database state, their dependencies passed in.

Each is an idempotent sweep, safe to run in any number of processes at once against one PostgreSQL
(rows are claimed with ``FOR UPDATE SKIP LOCKED``; see ``revocations``), and safe to run again after a crash:
whatever was due and not finished is due again. The runner decides when they run; tests call them with a
``FrozenClock``.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from app.approvals import jobs as approval_jobs
from app.audit.ledger import SYSTEM
from app.clock import Clock
from app.db import transaction
from app.decision import windows as cal
from app.freezes.service import governed_policies
from app.identity.errors import IssuerUnavailable
from app.identity.jwks import JwksCache
from app.issuers.models import Issuer
from app.issuers.service import to_config
from app.leases import ending
from app.leases.models import Lease, LeaseStatus, SeenToken
from app.leases.service import LeaseService
from app.metrics import scheduler_metrics
from app.policies.models import Policy
from app.scheduler.revocations import (
    BATCH_SIZE,
    CLAIM_TIMEOUT,
    REVOKE_THREADS,
    SweepResult,
    claimed,
    sweep,
)
from app.vault.port import SecretBackend
from app.windows.calendar import Calendar
from app.windows.models import Freeze

log = logging.getLogger(__name__)

# A lease still 'issuing' after this long was left behind by a broker that stopped between its write-ahead
# row and Vault's answer (a live request gives up after the Vault timeout, 5 s by default).
ISSUING_GRACE = timedelta(seconds=60)
ISSUING_NOTE = "issuance did not complete; recovered by the scheduler"
# A lease a request has just begun to end (revoking, not tried yet, changed moments ago) is that request's to
# finish: the retry sweep leaves it alone this long (past the Vault timeout), so Vault is not asked twice and
# the end event names the admin or CI job that ended it, not the scheduler. A request that died meanwhile
# leaves the lease to the scheduler after this.
IN_FLIGHT_GRACE = timedelta(seconds=10)
# A CI token is accepted up to its issuer's leeway (at most 300 s) past exp: its replay record must outlive
# that, or a replayed token would look new.
SEEN_TOKEN_GRACE = timedelta(seconds=300)
# An always-on freeze has a single occurrence with no start of its own; this stands in for it.
ALWAYS_STARTED = datetime(1970, 1, 1, tzinfo=UTC)
_INSTANT = timedelta(microseconds=1)


# --- ending leases ---------------------------------------------------------------------------------------


def expire_due_leases(
    sessions: sessionmaker[Session],
    vault: SecretBackend,
    clock: Clock,
    *,
    batch_size: int = BATCH_SIZE,
    threads: int = REVOKE_THREADS,
    claim_timeout: timedelta = CLAIM_TIMEOUT,
) -> SweepResult:
    """End every active lease whose ``expires_at`` has come: revoked at Vault, then ``expired``."""

    def claim(session: Session, now: datetime, limit: int) -> list[Lease]:
        due = session.scalars(
            select(Lease)
            .where(Lease.status == LeaseStatus.ACTIVE, Lease.expires_at <= now)
            .order_by(Lease.expires_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        for lease in due:
            ending.begin_end(lease, final_status=LeaseStatus.EXPIRED, end_reason="expired", now=now)
            claimed(lease, now, claim_timeout)
        return list(due)

    return sweep(sessions, vault, clock, claim, batch_size=batch_size, threads=threads)


def retry_revocations(
    sessions: sessionmaker[Session],
    vault: SecretBackend,
    clock: Clock,
    *,
    batch_size: int = BATCH_SIZE,
    threads: int = REVOKE_THREADS,
    claim_timeout: timedelta = CLAIM_TIMEOUT,
    in_flight_grace: timedelta = IN_FLIGHT_GRACE,
) -> SweepResult:
    """Try again every ``revoking`` lease whose ``next_attempt_at`` has come (after a failure's backoff, a
    claim that ran out because its worker died, or a request that began to end it and did not finish)."""

    def claim(session: Session, now: datetime, limit: int) -> list[Lease]:
        due = session.scalars(
            select(Lease)
            .where(
                Lease.status == LeaseStatus.REVOKING,
                or_(Lease.next_attempt_at <= now, Lease.next_attempt_at.is_(None)),
                or_(Lease.revoke_attempts > 0, Lease.updated_at <= now - in_flight_grace),
            )
            .order_by(Lease.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        return [claimed(lease, now, claim_timeout) for lease in due]

    return sweep(sessions, vault, clock, claim, batch_size=batch_size, threads=threads)


def recover_stuck_issuing(
    sessions: sessionmaker[Session],
    vault: SecretBackend,
    clock: Clock,
    *,
    grace: timedelta = ISSUING_GRACE,
    batch_size: int = BATCH_SIZE,
    threads: int = REVOKE_THREADS,
    claim_timeout: timedelta = CLAIM_TIMEOUT,
) -> SweepResult:
    """Leases left ``issuing`` for longer than ``grace``: whatever Vault may have issued for them is revoked
    (a token without a stored accessor is found by its lease id) and they end ``failed`` (invariant 2)."""

    def claim(session: Session, now: datetime, limit: int) -> list[Lease]:
        stuck = session.scalars(
            select(Lease)
            .where(Lease.status == LeaseStatus.ISSUING, Lease.created_at <= now - grace)
            .order_by(Lease.created_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        for lease in stuck:
            ending.begin_end(
                lease, final_status=LeaseStatus.FAILED, end_reason="issue_failed", now=now, note=ISSUING_NOTE
            )
            claimed(lease, now, claim_timeout)
        return list(stuck)

    result = sweep(sessions, vault, clock, claim, batch_size=batch_size, threads=threads)
    if result.claimed:
        log.warning("recovered %d lease(s) left issuing by a stopped broker", result.claimed)
    return result


def next_due(sessions: sessionmaker[Session]) -> datetime | None:
    """The earliest instant an expiry or a revocation retry falls due (None: nothing is pending)."""
    with sessions() as session:
        expiry = session.scalar(select(func.min(Lease.expires_at)).where(Lease.status == LeaseStatus.ACTIVE))
        retry = session.scalar(
            select(func.min(Lease.next_attempt_at)).where(Lease.status == LeaseStatus.REVOKING)
        )
    found = [t for t in (expiry, retry) if t is not None]
    return min(found) if found else None


# --- freezes ---------------------------------------------------------------------------------------------


def occurrence_start(freeze: Freeze, now: datetime) -> datetime | None:
    """The start of the freeze's occurrence that covers ``now`` (None: it does not apply now)."""
    zoned = Calendar.zoned(freeze)
    if isinstance(zoned.schedule, cal.AlwaysSchedule):
        return ALWAYS_STARTED
    starts = [iv.start for iv in cal.occurrences(zoned, now, now + _INSTANT) if iv.contains(now)]
    return min(starts, default=None)


def enforce_freezes(sessions: sessionmaker[Session], vault: SecretBackend, clock: Clock) -> int:
    """When a freeze occurrence starts, revoke the active leases it covers (end reason ``freeze``), once per
    occurrence however many workers run (``Freeze.last_enforced_start``). Returns how many were revoked."""
    now = clock.now()
    with transaction(sessions) as session:
        starting = [
            (freeze.id, start)
            for freeze in session.scalars(select(Freeze).order_by(Freeze.id))
            if (start := occurrence_start(freeze, now)) is not None and _unenforced(freeze, start)
        ]
    return sum(_enforce(sessions, vault, clock, freeze_id, start) for freeze_id, start in starting)


def _enforce(
    sessions: sessionmaker[Session], vault: SecretBackend, clock: Clock, freeze_id: int, start: datetime
) -> int:
    with sessions() as guard:
        # PostgreSQL: the freeze row stays locked while its leases are revoked, so another worker skips it,
        # and a crash rolls the mark back, so the next worker does it again. SQLite (one worker): its write
        # lock must not be held while another session revokes, so the guard lets go and marks afterwards.
        # Lock order: the guard holds the freeze row while the revoking session takes lease rows; an admin's
        # PUT of the freeze just waits for the guard.
        freeze = guard.scalar(select(Freeze).where(Freeze.id == freeze_id).with_for_update(skip_locked=True))
        if freeze is None or not _unenforced(freeze, start):
            return 0
        policies, name = governed_policies(guard, freeze.policies), freeze.name
        if guard.get_bind().dialect.name != "postgresql":
            guard.commit()
        with sessions() as session:
            revoked = LeaseService(session, vault, clock).reevaluate_active_leases(
                policies=policies, actor=SYSTEM
            )
        freeze = guard.get(Freeze, freeze_id, with_for_update=True)
        if freeze is not None and _unenforced(freeze, start):
            freeze.last_enforced_start = start
        guard.commit()
    log.info("freeze %r started: %d lease(s) revoked", name, revoked)
    return revoked


def _unenforced(freeze: Freeze, start: datetime) -> bool:
    return freeze.last_enforced_start is None or freeze.last_enforced_start < start


# --- housekeeping ----------------------------------------------------------------------------------------


def purge_seen_tokens(
    sessions: sessionmaker[Session], clock: Clock, *, grace: timedelta = SEEN_TOKEN_GRACE
) -> int:
    """Delete replay records of CI tokens that can no longer be accepted anyway; returns how many."""
    with transaction(sessions) as session:
        result = session.execute(delete(SeenToken).where(SeenToken.expires_at < clock.now() - grace))
        return int(getattr(result, "rowcount", 0) or 0)


def refresh_jwks(sessions: sessionmaker[Session], jwks: JwksCache) -> int:
    """Refresh, ahead of expiry, the signing keys of every registered issuer; returns how many were fetched.

    An issuer whose keys cannot be had is logged and skipped: requests keep using (or refusing) as the
    cache rules say."""
    with sessions() as session:
        configs = [to_config(issuer) for issuer in session.scalars(select(Issuer).order_by(Issuer.name))]
    fetched = 0
    outcomes: dict[str, bool | None] = {}  # issuer → its due refresh failed (None: none was due)
    for config in configs:
        try:
            due = jwks.refresh_if_due(config)
            fetched += due
            outcomes[config.name] = False if due else None
        except IssuerUnavailable as exc:
            log.warning("%s", exc)
            outcomes[config.name] = True
    scheduler_metrics().set_jwks_refreshes(outcomes)  # transom_jwks_refresh_failing
    return fetched


def refresh_lease_gauges(sessions: sessionmaker[Session], clock: Clock) -> None:
    """``transom_leases_overdue`` and ``transom_leases_active`` as the database says now."""
    now = clock.now()
    with sessions() as session:
        overdue = session.scalar(
            select(func.count())
            .select_from(Lease)
            .where(Lease.status.in_((LeaseStatus.ACTIVE, LeaseStatus.REVOKING)), Lease.expires_at <= now)
        )
        counts: dict[str, int] = dict.fromkeys(session.scalars(select(Policy.name)), 0)
        rows = session.execute(
            select(Lease.policy, func.count())
            .where(Lease.status == LeaseStatus.ACTIVE)
            .group_by(Lease.policy)
        )
        for policy, count in rows:
            counts[policy] = int(count)
    metrics = scheduler_metrics()
    metrics.leases_overdue.set(int(overdue or 0))
    metrics.set_active_by_policy(counts)


def schedule_approval_jobs(scheduler: Any, rt: Any) -> None:
    """The approvals' jobs (``app/approvals/jobs.py``: expiry, notifications), next to these."""
    approval_jobs.schedule(scheduler, rt)
