"""The checks after the load: leases, the ledger, revocations, what the clients saw, memory and logs."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.audit.models import AuditEvent
from app.leases.ending import END_ACTIONS
from app.leases.models import Lease, LeaseStatus
from tests.e2e.ledger.log_checks import transit_signer, wait_settled
from tests.support.ledger import settle_and_verify
from tests.support.openbao import OpenBaoServer
from tests.support.soak.load import Stats
from tests.support.soak.options import EARLY_MARGIN, ENDED, LOG_ERROR_MARKERS, SECRETS
from tests.support.soak.rss import RssTracker


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class DatabaseFigures:
    by_status: Counter[str]
    by_end_reason: Counter[str]
    expiry_lags: list[float]  # seconds, ended_at - expires_at, of expired leases
    events: int


def database_figures(sessions: sessionmaker[Session]) -> DatabaseFigures:
    with sessions() as session:
        statuses = Counter({str(s): int(n) for s, n in session.execute(_grouped(Lease.status))})
        reasons = Counter(
            {str(r): int(n) for r, n in session.execute(_grouped(Lease.end_reason)) if r is not None}
        )
        lags = sorted(
            (ended - expires).total_seconds()
            for expires, ended in session.execute(
                select(Lease.expires_at, Lease.ended_at).where(Lease.status == LeaseStatus.EXPIRED)
            )
            if ended is not None
        )
        events = int(session.scalar(select(func.count()).select_from(AuditEvent)) or 0)
    return DatabaseFigures(statuses, reasons, lags, events)


def _grouped(column: Any) -> Any:
    return select(column, func.count()).group_by(column)


def lease_checks(sessions: sessionmaker[Session], stats: Stats) -> tuple[list[Check], list[str]]:
    """The database's verdicts, and the story of each lease (a few) that failed one or puzzled a client."""
    now = datetime.now(UTC)
    checks = []
    with sessions() as session:
        overdue = session.scalar(
            select(func.count())
            .select_from(Lease)
            .where(Lease.status == LeaseStatus.ACTIVE, Lease.expires_at <= now)
        )
        active = session.scalar(
            select(func.count()).select_from(Lease).where(Lease.status == LeaseStatus.ACTIVE)
        )
        unsettled = dict(
            session.execute(
                _grouped(Lease.status).where(Lease.status.in_((LeaseStatus.REVOKING, LeaseStatus.ISSUING)))
            ).all()
        )
        early_ids = sorted(
            session.scalars(
                select(Lease.id).where(Lease.status == LeaseStatus.EXPIRED, Lease.ended_at < Lease.expires_at)
            )
        )
        early = len(early_ids)
        ended = {str(i) for i in session.scalars(select(Lease.id).where(Lease.status.in_(ENDED)))}
        end_events = _event_counts(session, tuple(END_ACTIONS.values()))
        granted_events = _event_counts(session, ("lease.granted",))
        doubled = sorted(i for i, n in end_events.items() if n > 1)
        with stats.lock:
            suspects = sorted(stats.suspects)
        told = dict.fromkeys([*doubled[:3], *early_ids[:3], *suspects])
        evidence = [lease_story(session, lease_id) for lease_id in told]
    checks.append(
        Check(
            "no lease active past its expires_at",
            overdue == 0,
            f"{overdue} overdue; {active} still active (not yet due) at the end",
        )
    )
    checks.append(
        Check(
            "no lease left revoking or issuing",
            not unsettled,
            ", ".join(f"{n} {s}" for s, n in sorted(unsettled.items())) or "none",
        )
    )
    checks.append(Check("no lease expired before its expires_at", early == 0, f"{early} ended early"))
    missing = sorted(ended - set(end_events))
    stray = sorted(set(end_events) - ended)
    checks.append(
        Check(
            "exactly one end event per ended lease",
            not (missing or doubled or stray),
            f"{len(ended)} ended leases, {sum(end_events.values())} end events; "
            f"missing {few(missing)}, more than one {few(doubled)}, for a lease not ended {few(stray)}",
        )
    )
    ungranted = sorted(i for i in stats.granted_ids if granted_events.get(i) != 1)
    checks.append(
        Check(
            "every lease a client was granted has exactly one lease.granted event",
            not ungranted,
            f"{len(stats.granted_ids)} grants seen by clients, "
            f"{sum(granted_events.values())} granted events; without exactly one {few(ungranted)}",
        )
    )
    return checks, evidence


def ledger_check(sessions: sessionmaker[Session], vault: OpenBaoServer) -> Check:
    """The workers' sequencers integrated every event exactly once at gapless positions, and the log, with
    a last checkpoint over all of it, verifies against Vault's key."""
    problems = wait_settled(sessions, timeout=10).problems()
    with transit_signer(vault) as signer:
        verification = settle_and_verify(sessions, signer)
    if not verification.ok:
        problems.append(f"verify: {verification.reason} (first bad index {verification.first_bad_index})")
    return Check(
        "the ledger holds every event once, gapless, and verifies",
        not problems,
        f"{verification.checked} events checked, {verification.pending} pending"
        + (f"; {'; '.join(problems)}" if problems else ""),
    )


def lease_story(session: Session, lease_id: str) -> str:
    """One lease as the database tells it: its row, then its ledger events in order."""
    lease = session.get(Lease, lease_id)
    if lease is None:
        return f"`{lease_id}`: no such lease in the database"
    events = session.execute(
        select(AuditEvent.action, AuditEvent.actor_type, AuditEvent.at, AuditEvent.details)
        .where(AuditEvent.lease_id == lease_id)
        .order_by(AuditEvent.id)
    ).all()
    told = [
        f"{action} {at:%H:%M:%S.%f}"[:-3]
        + f" by {actor}"
        + (f" (expires_at {details['expires_at']})" if "expires_at" in details else "")
        for action, actor, at, details in events
    ]
    ended = f"{lease.ended_at:%H:%M:%S.%f}"[:-3] if lease.ended_at else "-"
    return (
        f"`{lease.id}` {lease.secret_kind}, now {lease.status} ({lease.end_reason}), "
        f"expires_at {lease.expires_at:%H:%M:%S.%f}"[:-3]
        + f", ended_at {ended}, renewals {lease.renewals}: "
        + " → ".join(told)
    )


def revocation_check(sessions: sessionmaker[Session], vault_log: str) -> Check:
    """A failed revocation (``lease.revoke_failed``) at a healthy OpenBao is Transom's doing, unless OpenBao
    itself says why: its database plugin can fail a revocation when PostgreSQL refuses one of its statements
    (``tuple concurrently updated``, with many roles dropped at once), which OpenBao answers with 400."""
    kinds = {name: kind for kind, name in SECRETS.items()}
    with sessions() as session:
        rows = session.execute(
            select(AuditEvent.secret, AuditEvent.details).where(AuditEvent.action == "lease.revoke_failed")
        ).all()
    failures = Counter(
        f"{kinds.get(str(secret), secret)} {(details or {}).get('error_class')}" for secret, details in rows
    )
    dynamic = sum(n for key, n in failures.items() if key.startswith("dynamic "))
    explained = vault_log.count("lease revocation failed")
    unexplained = len(rows) - min(dynamic, explained)
    return Check(
        "no revocation failed at Vault but for reasons OpenBao logged (lease.revoke_failed)",
        unexplained == 0,
        (", ".join(f"{n} {key}" for key, n in failures.most_common()) or "none")
        + f"; OpenBao logged {explained} failed database revocations (retried by the workers)",
    )


def _event_counts(session: Session, actions: tuple[str, ...]) -> dict[str, int]:
    rows = session.execute(
        select(AuditEvent.lease_id, func.count())
        .where(AuditEvent.action.in_(actions), AuditEvent.lease_id.is_not(None))
        .group_by(AuditEvent.lease_id)
    )
    return {str(lease_id): int(n) for lease_id, n in rows}


def few(items: list[str], shown: int = 5) -> str:
    if not items:
        return "0"
    more = f" (+{len(items) - shown} more)" if len(items) > shown else ""
    return f"{len(items)}: {', '.join(items[:shown])}{more}"


def client_checks(stats: Stats) -> list[Check]:
    with stats.lock:
        server_errors = sum(n for (_, status), n in stats.statuses.items() if status >= 500)
        unexpected, transport = list(stats.unexpected), list(stats.transport_errors)
        early, canary_failures = list(stats.early_conflicts), list(stats.canary_failures)
        canaries = stats.canaries
    return [
        Check(
            "every answer as the API promises (no 5xx, no unexpected status, no dropped connection)",
            not (unexpected or transport or server_errors),
            f"{server_errors} 5xx; unexpected {few(unexpected, 3)}; "
            f"transport or client errors {few(transport, 3)}",
        ),
        Check(
            "no renew or release found its lease ended before expires_at",
            not early,
            f"{few(early, 3)} (sent more than {EARLY_MARGIN:.0f} s before expires_at)",
        ),
        Check(
            "a released or revoked credential stops working at once",
            not canary_failures,
            f"{canaries} token/database credentials tried after 200; still working {few(canary_failures, 3)}",
        ),
    ]


def rss_checks(rss: RssTracker, victim: str) -> list[Check]:
    too_much = [
        f"{row.name} +{row.growth_kib / 1024:.1f} MiB (bound {row.bound_kib / 1024:.0f})"
        for row in rss.rows.values()
        if not row.flat
    ]
    respawned = [
        row.name for row in rss.rows.values() if row.last_pid != row.start_pid and row.name != victim
    ]
    return [
        Check(
            "RSS flat (growth ≤ max(50 %, 60 MiB) per process)",
            not too_much and bool(rss.rows),
            few(too_much) if too_much else f"{len(rss.rows)} processes within bounds",
        ),
        Check(
            "no broker or worker process died or was respawned (but the one killed on purpose)",
            not respawned,
            few(respawned),
        ),
    ]


def log_errors(texts: dict[str, str]) -> list[str]:
    found = []
    for name, text in texts.items():
        for line in text.splitlines():
            if any(marker in line for marker in LOG_ERROR_MARKERS):
                found.append(f"{name}: {line.strip()[:200]}")
    return found


def access_log_5xx(text: str) -> int:
    """5xx answers in gunicorn's access log (format ``h "m U" s B Ls``)."""
    count = 0
    for line in text.splitlines():
        parts = line.rsplit('" ', 1)
        if len(parts) == 2 and parts[1][:1] == "5" and parts[1][:3].isdigit():
            count += 1
    return count
