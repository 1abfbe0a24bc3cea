"""Which Vault token leases Transom still claims: what crash recovery must not revoke (issue 18).

Read by ``HvacBackend.revoke_by_lease_id`` (app/vault/role_tokens.py) after it lists the token role's leases.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.leases.models import Lease, LeaseStatus
from app.vault.port import TokenClaims

# A write-ahead row is committed before its Vault call, by a clock that may run this far ahead of Vault's.
CLOCK_MARGIN = timedelta(seconds=30)
_LIVE = (LeaseStatus.ISSUING, LeaseStatus.ACTIVE, LeaseStatus.REVOKING)


def token_claims(sessions: sessionmaker[Session]) -> TokenClaims:
    with sessions() as session:
        rows = session.execute(
            select(Lease.status, Lease.vault_accessor, Lease.vault_lease_id, Lease.created_at).where(
                Lease.secret_kind == "token", Lease.status.in_(_LIVE)
            )
        ).all()
    keys: set[str] = set()
    in_flight: list[datetime] = []
    unsettled = 0
    for status, accessor, key, created_at in rows:
        if key:
            keys.add(key)
        elif accessor:
            unsettled += 1  # holds a token whose Vault lease Transom cannot name
        elif status == LeaseStatus.ISSUING:
            in_flight.append(created_at)  # its Vault call may be under way
        # else: revoking without a handle: the stuck issue recovery is looking for
    spare_after = min(in_flight) - CLOCK_MARGIN if in_flight else None
    return TokenClaims(frozenset(keys), spare_after, unsettled)
