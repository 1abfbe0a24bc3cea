"""After Vault answered a new lease: activate its write-ahead row, or take the credential back.

The lease is granted only if the row is still ``issuing`` (crash recovery did not take it over) and the
configuration as committed now still grants it (it may have changed during the Vault call); either way
the ledger says what happened. Each step is its own transaction on the caller's session.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from app.audit.ledger import SYSTEM, Actor, Ledger, event_insert
from app.clock import Clock
from app.config_snapshot.models import GENERATION_ROW_ID, ConfigGeneration
from app.config_snapshot.snapshot import ConfigSnapshot
from app.db import committing
from app.decision.reasons import FREEZE_ACTIVE, UNKNOWN_SECRET, Reason
from app.errors import PolicyDenied, ServiceUnavailable
from app.identity.workload import VerifiedToken
from app.instants import format_instant
from app.leases import ending, reevaluation, replay
from app.leases.models import Lease, LeaseStatus
from app.vault.port import IssuedCredential, SecretBackend, VaultError, VaultRejected

LEASES = cast(Table, Lease.__table__)
_SHARED_GENERATION = (
    select(ConfigGeneration.generation)
    .where(ConfigGeneration.id == GENERATION_ROW_ID)
    .with_for_update(read=True)
    .scalar_subquery()
)
_ACTIVATE = (  # built once: each execution binds only its values
    update(LEASES)
    .where(LEASES.c.id == bindparam("lease_id"), LEASES.c.status == LeaseStatus.ISSUING)
    .values(
        {key: bindparam(f"new_{key}") for key in ("status", "vault_accessor", "vault_lease_id", "updated_at")}
    )
    .returning(_SHARED_GENERATION)
)
_EVENT = "event_"  # the lease.granted event's parameters, apart from the activation's
_INSERT_GRANT = event_insert(_EVENT)
# PostgreSQL: the event rides in the activation's statement as a data-modifying CTE (one round trip less).
_ACTIVATE_AND_RECORD = _ACTIVATE.add_cte(_INSERT_GRANT.cte("granted"))


def issue_failed(session: Session, clock: Clock, lease_id: str, error: VaultError) -> None:
    """Vault did not issue (or we cannot tell). Nothing stays active; a token Vault may still have
    created under this lease is revoked by the scheduler, which knows it by the lease id."""
    with committing(session):
        lease = ending.lock_lease(session, lease_id)
        assert lease is not None
        now = clock.now()
        replay.forget_token(session, lease_id)
        lease.last_error = error.error_class
        if lease.secret_kind == "token" and not isinstance(error, VaultRejected):
            ending.begin_end(lease, final_status=LeaseStatus.FAILED, end_reason="issue_failed", now=now)
        else:
            lease.status = LeaseStatus.FAILED
            lease.end_reason = "issue_failed"
            lease.ended_at = now
            lease.updated_at = now
            Ledger(session, clock).append(
                "lease.issue_failed",
                actor=SYSTEM,
                details={"error_class": error.error_class},
                **ending.lease_facts(lease),
            )


def activate(
    session: Session,
    vault: SecretBackend,
    clock: Clock,
    lease_id: str,
    credential: IssuedCredential,
    token: VerifiedToken,
    actor: Actor,
    *,
    decided_at: int,
    grant_details: Mapping[str, Any] | None = None,
    on_grant: Callable[[Session, Lease], None] | None = None,
) -> Lease:
    """Activate the write-ahead row, unless the configuration changed since the decision (generation
    ``decided_at``) in a way that no longer grants it. ``grant_details`` join the ``lease.granted`` event's
    details; ``on_grant`` runs in the granting transaction (a break-glass lease's notification)."""
    try:
        with committing(session):
            lease = session.get(Lease, lease_id)  # in the session since the write-ahead step
            assert lease is not None
            grant = _grant_event(Ledger(session, clock), lease, token, actor, grant_details)
            generation = _mark_active(session, clock, lease, credential, grant)
            reasons = _reasons_if_changed(session, clock, lease, decided_at, generation)
            if reasons:
                session.rollback()  # the activation and its event with it
            else:
                if on_grant is not None:
                    on_grant(session, lease)
                session.commit()
                return lease
    except Exception:
        # The credential exists but our record of it does not: take it back at once.
        _revoke_quietly(vault, credential)
        raise ServiceUnavailable("The broker could not record the lease; nothing was granted.") from None
    _withdraw(session, vault, clock, lease_id, credential, token, actor, reasons)
    raise PolicyDenied(
        "The configuration changed while the lease was issued, and no longer grants it.", reasons=reasons
    )


def _mark_active(
    session: Session, clock: Clock, lease: Lease, credential: IssuedCredential, grant: dict[str, Any]
) -> int:
    """Mark the row active, write its ``lease.granted`` event (``grant``: ``Ledger.row`` values) and read the
    configuration generation: one statement on PostgreSQL, two elsewhere. The caller rolls the event back
    with the activation when the changed configuration no longer grants the lease.

    A conditional UPDATE: if crash recovery already took this row over (it waits a minute for that), the
    credential must not be handed out. Its RETURNING reads the generation row shared (``FOR SHARE`` on
    PostgreSQL; SQLite has one writer at a time, which orders the same way). Every configuration change bumps
    that row and holds it exclusively until it commits, so a change committed before this step shows in the
    generation read here, and one committed after it finds this lease active and re-evaluates it. The lease
    row is locked by the UPDATE before the RETURNING list reads the generation (lock order: lease rows, then
    the generation row; the event's insert locks neither)."""
    values = {
        "status": LeaseStatus.ACTIVE,
        "vault_accessor": credential.handle.accessor,
        "vault_lease_id": credential.handle.lease_id,
        "updated_at": clock.now(),
    }
    parameters = {"lease_id": lease.id, **{f"new_{key}": value for key, value in values.items()}}
    event = {_EVENT + key: value for key, value in grant.items()}
    if session.get_bind().dialect.name == "postgresql":
        generation = session.execute(_ACTIVATE_AND_RECORD, {**parameters, **event}).scalar_one_or_none()
    else:
        generation = session.execute(_ACTIVATE, parameters).scalar_one_or_none()
        if generation is not None:
            session.execute(_INSERT_GRANT, event)
    if generation is None:
        raise LookupError(f"lease {lease.id} is no longer being issued")
    for key, value in values.items():  # what the row now holds, without a flush to write it again
        set_committed_value(lease, key, value)
    return int(generation)


def _grant_event(
    ledger: Ledger, lease: Lease, token: VerifiedToken, actor: Actor, extra: Mapping[str, Any] | None
) -> dict[str, Any]:
    return ledger.row(
        "lease.granted",
        actor=actor,
        subject=ending.lease_facts(lease),
        decision="allow",
        details={
            "identity": token.identity.to_dict(),
            "source_address": lease.source_address,
            "expires_at": format_instant(lease.expires_at),
            "bounded_by": lease.bounded_by,
            "ttl": lease.ttl_seconds,
            **(extra or {}),
        },
    )


def _reasons_if_changed(
    session: Session, clock: Clock, lease: Lease, decided_at: int, generation: int
) -> list[Reason]:
    """Why the configuration as committed now (``generation``) would not grant this lease; nothing when it
    is the one the decision read. Judged as re-evaluation judges active leases after a change."""
    if generation == decided_at:
        return []
    config = ConfigSnapshot.load(session, generation)
    policy = config.policy(lease.policy)
    facts = config.calendar.facts(policy, clock.now()) if policy is not None else None
    reasons = reevaluation.lease_reasons(lease, policy, facts)
    if config.secret(lease.secret) is None:
        reasons.append(Reason(UNKNOWN_SECRET, f"the secret {lease.secret!r} no longer exists"))
    return reasons


def _withdraw(
    session: Session,
    vault: SecretBackend,
    clock: Clock,
    lease_id: str,
    credential: IssuedCredential,
    token: VerifiedToken,
    actor: Actor,
    reasons: Sequence[Reason],
) -> None:
    """Take back a credential nobody has seen: the lease ends ``failed`` once Vault confirms (the
    scheduler retries if it does not), the denial is in the ledger, and the token may try again."""
    with committing(session):
        lease = ending.lock_lease(session, lease_id)
        assert lease is not None
        if lease.status != LeaseStatus.ISSUING:  # crash recovery took it over: it revokes by lease id
            _revoke_quietly(vault, credential)
            return
        lease.vault_accessor = credential.handle.accessor
        lease.vault_lease_id = credential.handle.lease_id
        replay.forget_token(session, lease_id)
        frozen = any(r.code == FREEZE_ACTIVE for r in reasons)
        ending.begin_end(
            lease,
            final_status=LeaseStatus.FAILED,
            end_reason="freeze" if frozen else "policy_changed",
            now=clock.now(),
            note=", ".join(sorted({r.code for r in reasons})),
        )
        Ledger(session, clock).append(
            "lease.denied",
            actor=actor,
            decision="deny",
            reasons=reasons,
            details={"identity": token.identity.to_dict()},
            **ending.lease_facts(lease),
        )
    ending.finish_revocation(session, vault, clock, lease_id)


def _revoke_quietly(vault: SecretBackend, credential: IssuedCredential) -> None:
    # If this fails too, the write-ahead row stays 'issuing' and recovery revokes it by lease id.
    with contextlib.suppress(VaultError):
        vault.revoke(credential.handle)
