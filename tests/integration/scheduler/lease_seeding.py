"""Leases written straight into the database, with real Vault tokens behind the token-kind ones.

For tests and the benchmark that need many leases, or leases in states no request leaves behind (a crash
between the write-ahead row and Vault). A lease's Vault TTL is set apart from its ``expires_at`` on purpose:
Vault's own TTL must not end the token before Transom does, or a test could not tell who revoked it.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from hvac.exceptions import Forbidden
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.audit.models import AuditEvent
from app.leases.ending import END_ACTIONS
from app.leases.models import Lease, LeaseStatus
from app.leases.service import new_lease_id
from app.vault.port import SecretBackend, SecretSpec, VaultHandle
from tests.support.openbao import OpenBaoServer

TOKEN_SPEC = SecretSpec(name="seeded-token", kind="token", policies=("deploy-prod",))
IDENTITY: dict[str, Any] = {
    "issuer": "https://token.actions.githubusercontent.com",
    "repository": "acme/payments",
    "ref": "refs/heads/main",
    "ref_type": "branch",
    "branch": "main",
}
END_EVENT_ACTIONS = tuple(END_ACTIONS.values())


@dataclass(frozen=True, slots=True)
class SeededLease:
    id: str
    kind: str
    expires_at: datetime
    token: str | None = None  # the token-kind lease's Vault token, to prove it dead or alive


def seed_leases(
    sessions: sessionmaker[Session],
    vault: SecretBackend,
    expiries: Sequence[datetime],
    *,
    now: datetime,
    kind: str = "kv",
    status: LeaseStatus = LeaseStatus.ACTIVE,
    vault_ttl: timedelta = timedelta(minutes=10),
    store_accessor: bool = True,
    policy: str = "deploy-prod",
    threads: int = 8,
) -> list[SeededLease]:
    """One lease per entry of ``expiries``. ``kind="token"``: each gets a fresh Vault token (its accessor on
    the row unless ``store_accessor`` is False: the crash-before-activate case)."""
    ids = [new_lease_id() for _ in expiries]
    tokens: list[str | None] = [None] * len(ids)
    accessors: list[VaultHandle | None] = [None] * len(ids)  # the handle: accessor and Vault lease id
    if kind == "token":

        def issue(lease_id: str) -> tuple[str, VaultHandle]:
            issued = vault.issue(TOKEN_SPEC, lease_id=lease_id, ttl=vault_ttl, max_ttl=vault_ttl)
            return issued.data["token"], issued.handle

        with ThreadPoolExecutor(max_workers=threads) as pool:
            for index, (token, handle) in enumerate(pool.map(issue, ids)):
                tokens[index] = token
                accessors[index] = handle if store_accessor else None
    rows = [
        _row(lease_id, kind, policy, status, expires_at, accessor, now)
        for lease_id, expires_at, accessor in zip(ids, expiries, accessors, strict=True)
    ]
    with sessions() as session, session.begin():
        session.add_all(rows)
    return [
        SeededLease(lease_id, kind, expires_at, token)
        for lease_id, expires_at, token in zip(ids, expiries, tokens, strict=True)
    ]


def _row(
    lease_id: str,
    kind: str,
    policy: str,
    status: LeaseStatus,
    expires_at: datetime,
    accessor: VaultHandle | None,
    now: datetime,
) -> Lease:
    return Lease(
        id=lease_id,
        secret=TOKEN_SPEC.name if kind == "token" else "seeded-kv",
        secret_kind=kind,
        policy=policy,
        issuer="github",
        status=status,
        issued_at=now,
        expires_at=expires_at,
        max_expires_at=max(expires_at, now + timedelta(hours=1)),
        ttl_seconds=max(1, round((expires_at - now).total_seconds())),
        bounded_by="requested",
        renewals=0,
        workload_key=f"seeded-{lease_id}",
        identity=dict(IDENTITY),
        repository=IDENTITY["repository"],
        ref=IDENTITY["ref"],
        branch=IDENTITY["branch"],
        vault_accessor=accessor.accessor if accessor else None,
        vault_lease_id=accessor.lease_id if accessor else None,
        revoke_attempts=0,
        created_at=now,
        updated_at=now,
    )


def end_event_counts(sessions: sessionmaker[Session]) -> dict[str, int]:
    """How many end events (expired, released, revoked, issue_failed) the ledger holds per lease."""
    with sessions() as session:
        rows = session.execute(
            select(AuditEvent.lease_id, func.count())
            .where(AuditEvent.action.in_(END_EVENT_ACTIONS))
            .group_by(AuditEvent.lease_id)
        )
        return {str(lease_id): int(count) for lease_id, count in rows}


def statuses(sessions: sessionmaker[Session], ids: Sequence[str]) -> dict[str, str]:
    with sessions() as session:
        rows = session.execute(select(Lease.id, Lease.status).where(Lease.id.in_(list(ids))))
        return {str(lease_id): str(status) for lease_id, status in rows}


def token_works(vault: OpenBaoServer, token: str) -> bool:
    with vault.client_for(token) as client:
        try:
            client.auth.token.lookup_self()
            return True
        except Forbidden:
            return False


def lease_events(sessions: sessionmaker[Session], lease_id: str) -> list[tuple[str, dict[str, Any]]]:
    """The ledger's events about one lease, oldest first: (action, details)."""
    with sessions() as session:
        rows = session.execute(
            select(AuditEvent.action, AuditEvent.details)
            .where(AuditEvent.lease_id == lease_id)
            .order_by(AuditEvent.id)
        )
        return [(str(action), dict(details)) for action, details in rows]


def load_lease(sessions: sessionmaker[Session], lease_id: str) -> Lease:
    with sessions() as session:
        lease = session.get(Lease, lease_id)
        assert lease is not None
        return lease
