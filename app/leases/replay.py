"""Replays: the idempotent replay of a lease request (docs/API.md, "Leases"), and the single use of CI
tokens (docs/API.md, "Authentication"), which a replay keeps too.

A replay is found only under the presenting workload's own key (its identity claim for claim), and the
lease service judges it like a new request (policy, windows, freezes) before anything here runs. What
differs from a new lease is here: the lease must still be running, the presenting token must not have
obtained another lease, and the credentials are issued again (the earlier ones revoked first, so at most one
set per key is ever alive), with a ``lease.reissued`` event naming the presenting identity.
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any, NoReturn

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.ledger import Actor, EventSubject, Ledger
from app.clock import Clock
from app.decision.reasons import TOKEN_REPLAYED, Reason
from app.errors import Conflict
from app.identity.errors import TokenRejected
from app.identity.workload import VerifiedToken, WorkloadIdentity
from app.leases import ending
from app.leases.models import Lease, LeaseStatus, SeenToken
from app.vault.port import IssuedCredential, SecretBackend, SecretSpec, VaultError


def find(session: Session, identity: WorkloadIdentity, secret: str, key: str | None) -> Lease | None:
    """The lease this workload obtained for ``secret`` under idempotency ``key``, if any."""
    if not key:
        return None
    return session.scalar(
        select(Lease).where(
            Lease.workload_key == identity.workload_key(),
            Lease.secret == secret,
            Lease.idempotency_key == key,
        )
    )


def require_running(lease: Lease, now: datetime) -> None:
    """409 once the lease ended, or ran out before the scheduler ended it: a key serves one lease only."""
    if lease.status != LeaseStatus.ACTIVE or lease.expires_at <= now:
        status = lease.status if lease.status != LeaseStatus.ACTIVE else "expired"
        raise Conflict(
            f"The lease {lease.id} for this idempotency key is {status}; use a new key.",
            extra={"lease_id": lease.id, "lease_status": lease.status},
        )


def spend_token(session: Session, token: VerifiedToken, lease_id: str) -> bool:
    """Use up the presenting token for this lease; False when it already obtained another one.

    A replay hands out credentials, so its token counts as used. The token that obtained this very lease
    (or an earlier replay of it) may present itself again: a client retrying a request whose answer it lost
    has only that token on GitLab, which mints one per job.
    """
    seen = session.get(SeenToken, token.replay_key)
    if seen is None:
        session.add(SeenToken(replay_key=token.replay_key, lease_id=lease_id, expires_at=token.expires_at))
        return True
    return seen.lease_id == lease_id


def refuse_token(
    session: Session, clock: Clock, token: VerifiedToken, actor: Actor, facts: EventSubject
) -> NoReturn:
    """401 ``token_replayed``, with the denial in the ledger: the token already obtained a lease."""
    session.rollback()
    reason = Reason(TOKEN_REPLAYED, "this token already obtained a lease; CI tokens are single-use")
    Ledger(session, clock).append(
        "lease.denied",
        actor=actor,
        decision="deny",
        reasons=[reason],
        details={"identity": token.identity.to_dict()},
        **facts,
    )
    session.commit()
    raise TokenRejected(TOKEN_REPLAYED, reason.message)


def forget_token(session: Session, lease_id: str) -> None:
    """The CI token obtained nothing with this lease, so it may be used again."""
    for seen in session.scalars(select(SeenToken).where(SeenToken.lease_id == lease_id)):
        session.delete(seen)


def reissue(
    session: Session,
    vault: SecretBackend,
    clock: Clock,
    lease: Lease,
    secret: SecretSpec,
    token: VerifiedToken,
    actor: Actor,
    *,
    latest_end: datetime | None,
) -> tuple[Lease, dict[str, Any]]:
    """Revoke the lease's credentials and issue fresh ones for the rest of its time; commits the caller's
    transaction first, since no transaction (on SQLite: no write lock) is held across Vault calls.

    ``latest_end`` (the window's end or next freeze, as judged now) bounds them at Vault as a new grant's
    are (docs/API.md, ``token``), whatever renews them."""
    now = clock.now()
    old = ending.handle_of(lease)
    bound = min(latest_end or lease.max_expires_at, lease.max_expires_at)
    lease_id, ttl, max_ttl = lease.id, min(lease.expires_at, bound) - now, bound - now
    session.commit()
    if old is not None:
        vault.revoke(old)
    credential = vault.issue(secret, lease_id=lease_id, ttl=ttl, max_ttl=max_ttl)
    try:
        locked = _record(session, clock, lease_id, credential, token, actor, revoked=old is not None)
    except Exception:
        session.rollback()
        # Nobody will see this credential (the lease ended meanwhile, or the record failed): take it back.
        with contextlib.suppress(VaultError):
            vault.revoke(credential.handle)
        raise
    return locked, credential.data


def _record(
    session: Session,
    clock: Clock,
    lease_id: str,
    credential: IssuedCredential,
    token: VerifiedToken,
    actor: Actor,
    *,
    revoked: bool,
) -> Lease:
    locked = ending.lock_lease(session, lease_id)
    assert locked is not None
    require_running(locked, clock.now())  # released or revoked while Vault was issuing
    locked.vault_accessor = credential.handle.accessor
    locked.vault_lease_id = credential.handle.lease_id
    locked.updated_at = clock.now()
    Ledger(session, clock).append(
        "lease.reissued",
        actor=actor,
        decision="allow",
        details={
            "reason": "idempotent_replay",
            "identity": token.identity.to_dict(),
            "previous_revoked": revoked,
        },
        **ending.lease_facts(locked),
    )
    session.commit()
    return locked
