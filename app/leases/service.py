"""The lease lifecycle: the only place that changes lease state.

Issuance keeps invariant 2 by its order: decide → write-ahead row (``issuing``) committed → Vault →
activate with its ledger event in one transaction (judged again first if the configuration changed
meanwhile). Ending keeps invariant 3 (see ``ending``); re-evaluation after a configuration change is in
``reevaluation``.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.audit.ledger import SYSTEM, Actor, EventSubject, Ledger
from app.clock import Clock
from app.config_snapshot.generation import read_generation
from app.config_snapshot.snapshot import ConfigSnapshot
from app.db import committing
from app.decision import outsiders
from app.decision.policy import Decision, Grant, PolicyView, decide, renewal_decision
from app.decision.reasons import (
    FREEZE_ACTIVE,
    MAX_ACTIVE_REACHED,
    NO_POLICY,
    UNKNOWN_SECRET,
    Reason,
)
from app.errors import Conflict, Forbidden, NotFound, PolicyDenied, ServiceUnavailable
from app.identity.claims import ref_problem
from app.identity.workload import VerifiedToken, WorkloadIdentity
from app.instants import format_instant
from app.leases import ending, reevaluation, replay
from app.leases.denials import EVERY_REFUSAL, RefusalGate
from app.leases.models import Lease, LeaseStatus, SeenToken
from app.policies.models import Policy
from app.policies.service import to_view
from app.vault.port import IssuedCredential, SecretBackend, SecretSpec, VaultError, VaultRejected
from app.windows.calendar import Calendar

LIVE_STATUSES = (LeaseStatus.ISSUING, LeaseStatus.ACTIVE)


@dataclass(frozen=True, slots=True)
class LeaseRequest:
    secret: str
    ttl: timedelta | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class IssuedLease:
    lease: Lease
    data: dict[str, Any] = field(repr=False)  # the secret values: for the response only
    replayed: bool = False

    def __getattr__(self, name: str) -> Any:
        """Read like the lease itself, so one response schema dumps both."""
        return getattr(self.lease, name)


def new_lease_id() -> str:
    return "lse_" + secrets.token_urlsafe(18)


def count_live(session: Session, policy: str) -> int:
    """Leases that count against ``max_active``: active ones and those being issued right now."""
    query = (
        select(func.count()).select_from(Lease).where(Lease.policy == policy, Lease.status.in_(LIVE_STATUSES))
    )
    return int(session.scalar(query) or 0)


def identity_facts(identity: WorkloadIdentity, secret: str) -> EventSubject:
    return {
        "secret": secret,
        "repository": identity.repository,
        "ref": identity.ref,
        "branch": identity.branch or identity.tag,
    }


ConfigSource = Callable[[Session], ConfigSnapshot]


def load_config(session: Session) -> ConfigSnapshot:
    """The configuration as committed now, uncached (for callers without a process cache)."""
    return ConfigSnapshot.load(session, read_generation(session))


class LeaseService:
    def __init__(
        self,
        session: Session,
        vault: SecretBackend,
        clock: Clock,
        *,
        config: ConfigSource = load_config,
        refusals: RefusalGate = EVERY_REFUSAL,
    ) -> None:
        self._session = session
        self._vault = vault
        self._clock = clock
        self._config = config
        self._refusals = refusals  # limit and burst-count refused requests (see ``denials``)

    def _transaction(self) -> contextlib.AbstractContextManager[Session]:
        """One transaction on the caller's session (Vault is only called between them)."""
        return committing(self._session)

    # --- issuance ------------------------------------------------------------------------------------

    def request_lease(self, token: VerifiedToken, request: LeaseRequest) -> IssuedLease:
        identity = token.identity
        actor = Actor("ci", identity.actor_id())
        with self._transaction() as session:
            now = self._clock.now()
            # Found only under the presenting workload's own key, and judged like a new request before it
            # is answered (docs/API.md, "idempotency_key").
            existing = replay.find(session, identity, request.secret, request.idempotency_key)
            config = self._config(session)
            secret = config.secret(request.secret)
            policies = config.policies_naming(request.secret) if secret is not None else []
            decision = self._decide(
                session, identity, request, secret, policies, config.calendar, now, replaying=existing
            )
            decision = outsiders.for_requester(decision, identity, config.policies)  # docs/API.md, "Leases"
            if not decision.allowed or decision.grant is None or secret is None:
                self._deny(session, identity, request, decision.reasons, actor)
            assert decision.grant is not None and secret is not None
            if existing is not None:
                return self._replay(session, existing, token, request, secret, actor, decision.grant)
            policy = next(p for p in policies if p.name == decision.grant.policy)
            if policy.max_active is not None:
                self._hold_max_active(session, policy, identity, request, actor)

            lease = self._write_ahead(session, token, request, secret, policy, decision, now)
            try:
                session.commit()
            except IntegrityError:
                session.rollback()
                self._refuse_duplicate(session, token, request, actor)
            lease_id = lease.id

        try:
            credential = self._vault.issue(
                secret,
                lease_id=lease_id,
                ttl=lease.expires_at - now,
                # Window end and next freeze too (docs/API.md, token): Vault ends it there whatever renews it.
                max_ttl=min(decision.grant.latest_end or lease.max_expires_at, lease.max_expires_at) - now,
            )
        except VaultError as error:
            self._issue_failed(lease_id, error)
            raise
        activated = self._activate(lease_id, credential, token, actor, decided_at=config.generation)
        return IssuedLease(activated, credential.data)

    def _decide(
        self,
        session: Session,
        identity: WorkloadIdentity,
        request: LeaseRequest,
        secret: SecretSpec | None,
        policies: Sequence[PolicyView],
        calendar: Calendar,
        now: datetime,
        *,
        replaying: Lease | None = None,
    ) -> Decision:
        candidates: list[tuple[PolicyView, Any, int]] = []
        for policy in policies:
            # Only max_active reads the count: skip the query for policies without one.
            active = count_live(session, policy.name) if policy.max_active is not None else 0
            if active and replaying is not None and replaying.policy == policy.name:
                active -= replaying.status in LIVE_STATUSES  # a replay takes no new place
            candidates.append((policy, calendar.facts(policy, now), active))
        return decide(
            identity,
            request.ttl,
            candidates,
            now=now,
            secret_known=secret is not None,
            ref_problem=ref_problem(identity),
            secret=request.secret,
        )

    def _deny(
        self,
        session: Session,
        identity: WorkloadIdentity,
        request: LeaseRequest,
        reasons: Sequence[Reason],
        actor: Actor,
    ) -> None:
        session.rollback()
        self._refusals.record(  # 429 past the limit; one event per burst of identical refusals
            Ledger(session, self._clock),
            identity,
            "lease.denied",
            actor=actor,
            decision="deny",
            reasons=reasons,
            details={"identity": identity.to_dict()},
            **identity_facts(identity, request.secret),
        )
        session.commit()
        raise PolicyDenied("No policy grants the requested secret to this workload now.", reasons=reasons)

    def _hold_max_active(
        self,
        session: Session,
        policy: PolicyView,
        identity: WorkloadIdentity,
        request: LeaseRequest,
        actor: Actor,
    ) -> None:
        """Recount under a lock on the policy row, so parallel requests cannot all take the last place."""
        session.execute(select(Policy.id).where(Policy.name == policy.name).with_for_update())
        live = count_live(session, policy.name)
        if policy.max_active is not None and live >= policy.max_active:
            reason = Reason(
                MAX_ACTIVE_REACHED,
                f"{live} leases are active under this policy, its max_active is {policy.max_active}",
                policy.name,
            )
            self._deny(session, identity, request, [reason], actor)

    def _write_ahead(
        self,
        session: Session,
        token: VerifiedToken,
        request: LeaseRequest,
        secret: SecretSpec,
        policy: PolicyView,
        decision: Decision,
        now: datetime,
    ) -> Lease:
        grant = decision.grant
        assert grant is not None
        identity = token.identity
        lease = Lease(
            id=new_lease_id(),
            secret=secret.name,
            secret_kind=secret.kind,
            policy=policy.name,
            issuer=identity.issuer,
            status=LeaseStatus.ISSUING,
            issued_at=now,
            expires_at=grant.expires_at,
            max_expires_at=now + policy.max_ttl,
            ttl_seconds=round(grant.ttl.total_seconds()),
            bounded_by=grant.bounded_by,
            renewals=0,
            idempotency_key=request.idempotency_key,
            workload_key=identity.workload_key(),
            identity=identity.to_dict(),
            repository=identity.repository,
            ref=identity.ref,
            branch=identity.branch or identity.tag,
            runner_id=identity.runner_id,
            pipeline_id=identity.pipeline_id,
            revoke_attempts=0,
            created_at=now,
            updated_at=now,
        )
        session.add(SeenToken(replay_key=token.replay_key, lease_id=lease.id, expires_at=token.expires_at))
        session.add(lease)
        return lease

    def _refuse_duplicate(
        self, session: Session, token: VerifiedToken, request: LeaseRequest, actor: Actor
    ) -> None:
        if session.get(SeenToken, token.replay_key) is not None:
            replay.refuse_token(
                session, self._clock, token, actor, identity_facts(token.identity, request.secret)
            )
        raise Conflict("A lease with this idempotency key is being issued right now; retry shortly.")

    def _issue_failed(self, lease_id: str, error: VaultError) -> None:
        """Vault did not issue (or we cannot tell). Nothing stays active; a token Vault may still have
        created under this lease is revoked by the scheduler, which knows it by the lease id."""
        with self._transaction() as session:
            lease = ending.lock_lease(session, lease_id)
            assert lease is not None
            now = self._clock.now()
            replay.forget_token(session, lease_id)
            lease.last_error = error.error_class
            if lease.secret_kind == "token" and not isinstance(error, VaultRejected):
                ending.begin_end(lease, final_status=LeaseStatus.FAILED, end_reason="issue_failed", now=now)
            else:
                lease.status = LeaseStatus.FAILED
                lease.end_reason = "issue_failed"
                lease.ended_at = now
                lease.updated_at = now
                Ledger(session, self._clock).append(
                    "lease.issue_failed",
                    actor=SYSTEM,
                    details={"error_class": error.error_class},
                    **ending.lease_facts(lease),
                )
            session.commit()

    def _activate(
        self,
        lease_id: str,
        credential: IssuedCredential,
        token: VerifiedToken,
        actor: Actor,
        *,
        decided_at: int,
    ) -> Lease:
        """Activate the write-ahead row, unless the configuration changed since the decision (generation
        ``decided_at``) in a way that no longer grants it."""
        try:
            with self._transaction() as session:
                lease = self._mark_active(session, lease_id, credential)
                ledger = Ledger(session, self._clock)
                # Every configuration change appends to the ledger, so holding its lock orders this step
                # against them: a change committed before it shows in the generation read next, and one
                # committed after it finds this lease active and re-evaluates it. (Lock order as everywhere:
                # lease rows, then the ledger.)
                ledger.lock()
                reasons = self._reasons_if_changed(session, lease, decided_at)
                if reasons:
                    session.rollback()  # the activation with it
                else:
                    self._record_grant(ledger, lease, token, actor)
                    session.commit()
                    return lease
        except Exception:
            # The credential exists but our record of it does not: take it back at once.
            self._revoke_quietly(credential)
            raise ServiceUnavailable("The broker could not record the lease; nothing was granted.") from None
        self._withdraw(lease_id, credential, token, actor, reasons)
        raise PolicyDenied(
            "The configuration changed while the lease was issued, and no longer grants it.", reasons=reasons
        )

    def _mark_active(self, session: Session, lease_id: str, credential: IssuedCredential) -> Lease:
        # One conditional UPDATE: if crash recovery already took this row over (it waits a minute for
        # that), the credential must not be handed out.
        activated = session.execute(
            update(Lease)
            .where(Lease.id == lease_id, Lease.status == LeaseStatus.ISSUING)
            .values(
                status=LeaseStatus.ACTIVE,
                vault_accessor=credential.handle.accessor,
                vault_lease_id=credential.handle.lease_id,
                updated_at=self._clock.now(),
            )
        )
        if activated.rowcount != 1:  # type: ignore[attr-defined]
            raise LookupError(f"lease {lease_id} is no longer being issued")
        lease = session.get(Lease, lease_id)  # in the session since the write-ahead step
        assert lease is not None
        return lease

    def _record_grant(self, ledger: Ledger, lease: Lease, token: VerifiedToken, actor: Actor) -> None:
        ledger.append(
            "lease.granted",
            actor=actor,
            decision="allow",
            details={
                "identity": token.identity.to_dict(),
                "expires_at": format_instant(lease.expires_at),
                "bounded_by": lease.bounded_by,
                "ttl": lease.ttl_seconds,
            },
            **ending.lease_facts(lease),
        )

    def _reasons_if_changed(self, session: Session, lease: Lease, decided_at: int) -> list[Reason]:
        """Why the configuration as committed now would not grant this lease; nothing when it is the one
        the decision read. Judged as re-evaluation judges active leases after a change."""
        generation = read_generation(session)
        if generation == decided_at:
            return []
        config = ConfigSnapshot.load(session, generation)
        policy = config.policy(lease.policy)
        facts = config.calendar.facts(policy, self._clock.now()) if policy is not None else None
        reasons = reevaluation.lease_reasons(lease, policy, facts)
        if config.secret(lease.secret) is None:
            reasons.append(Reason(UNKNOWN_SECRET, f"the secret {lease.secret!r} no longer exists"))
        return reasons

    def _withdraw(
        self,
        lease_id: str,
        credential: IssuedCredential,
        token: VerifiedToken,
        actor: Actor,
        reasons: Sequence[Reason],
    ) -> None:
        """Take back a credential nobody has seen: the lease ends ``failed`` once Vault confirms (the
        scheduler retries if it does not), the denial is in the ledger, and the token may try again."""
        with self._transaction() as session:
            lease = ending.lock_lease(session, lease_id)
            assert lease is not None
            if lease.status != LeaseStatus.ISSUING:  # crash recovery took it over: it revokes by lease id
                self._revoke_quietly(credential)
                return
            lease.vault_accessor = credential.handle.accessor
            lease.vault_lease_id = credential.handle.lease_id
            replay.forget_token(session, lease_id)
            frozen = any(r.code == FREEZE_ACTIVE for r in reasons)
            ending.begin_end(
                lease,
                final_status=LeaseStatus.FAILED,
                end_reason="freeze" if frozen else "policy_changed",
                now=self._clock.now(),
                note=", ".join(sorted({r.code for r in reasons})),
            )
            Ledger(session, self._clock).append(
                "lease.denied",
                actor=actor,
                decision="deny",
                reasons=reasons,
                details={"identity": token.identity.to_dict()},
                **ending.lease_facts(lease),
            )
        self.finish_revocation(lease_id)

    def _revoke_quietly(self, credential: IssuedCredential) -> None:
        # If this fails too, the write-ahead row stays 'issuing' and recovery revokes it by lease id.
        with contextlib.suppress(VaultError):
            self._vault.revoke(credential.handle)

    # --- idempotent replay ---------------------------------------------------------------------------

    def _replay(
        self,
        session: Session,
        lease: Lease,
        token: VerifiedToken,
        request: LeaseRequest,
        secret: SecretSpec,
        actor: Actor,
        grant: Grant,
    ) -> IssuedLease:
        """A replay the policy grants now: the same lease, fresh credentials (see ``replay``)."""
        _require_owner(lease, token.identity)
        replay.require_running(lease, self._clock.now())
        if not replay.spend_token(session, token, lease.id):
            replay.refuse_token(
                session, self._clock, token, actor, identity_facts(token.identity, request.secret)
            )
        try:
            session.flush()
        except IntegrityError:  # the same token, presented twice at once
            session.rollback()
            self._refuse_duplicate(session, token, request, actor)
        renewed, data = replay.reissue(
            session, self._vault, self._clock, lease, secret, token, actor, latest_end=grant.latest_end
        )
        return IssuedLease(renewed, data, replayed=True)

    # --- reading ---------------------------------------------------------------------------------------

    def get_lease(self, lease_id: str, *, workload: WorkloadIdentity | None) -> Lease:
        """The lease; a workload may only see its own (``None``: an auditor or admin)."""
        with self._transaction() as session:
            lease = session.get(Lease, lease_id)
            if lease is None:
                raise NotFound(f"no lease {lease_id!r}")
            if workload is not None:
                _require_owner(lease, workload)
            return lease

    # --- renew -----------------------------------------------------------------------------------------

    def renew_lease(self, lease_id: str, token: VerifiedToken, ttl: timedelta | None) -> Lease:
        identity = token.identity
        actor = Actor("ci", identity.actor_id())
        with self._transaction() as session:
            lease = session.get(Lease, lease_id)
            if lease is None:
                raise NotFound(f"no lease {lease_id!r}")
            _require_owner(lease, identity)
            now = self._clock.now()
            _require_unexpired(lease, now)
            policy = session.scalar(select(Policy).where(Policy.name == lease.policy))
            decision = self._renewal_decision(session, lease, policy, identity, ttl, now)
            if not decision.allowed or decision.grant is None:
                Ledger(session, self._clock).append(
                    "lease.renew_denied",
                    actor=actor,
                    decision="deny",
                    reasons=decision.reasons,
                    details={"identity": identity.to_dict()},
                    **ending.lease_facts(lease),
                )
                session.commit()
                self.end_lease(
                    lease_id, final_status=LeaseStatus.REVOKED, end_reason="policy_changed", actor=actor
                )
                raise PolicyDenied("The renewal is denied; the lease was revoked.", reasons=decision.reasons)
            grant = decision.grant
            handle = ending.handle_of(lease)
        if handle is not None:
            try:
                self._vault.renew(handle, ttl=grant.expires_at - now)
            except VaultRejected as error:
                # Vault no longer knows the credential because the lease ended or ran out meanwhile (a
                # worker revoked it, or Vault's TTL ended it first): the lease's answer (409), not Vault's.
                # Caught at the instant its TTL runs out, OpenBao says "invalid request", not "not found".
                if error.error_class in ("not_found", "invalid_request"):
                    with self._transaction() as session:
                        current = ending.lock_lease(session, lease_id)
                        assert current is not None
                        _require_unexpired(current, self._clock.now())
                raise
        with self._transaction() as session:
            locked = ending.lock_lease(session, lease_id)
            assert locked is not None
            _require_active(locked)
            locked.expires_at = grant.expires_at
            locked.ttl_seconds = round(grant.ttl.total_seconds())
            locked.bounded_by = grant.bounded_by
            locked.renewals += 1
            locked.updated_at = now
            Ledger(session, self._clock).append(
                "lease.renewed",
                actor=actor,
                decision="allow",
                details={"expires_at": format_instant(grant.expires_at), "bounded_by": grant.bounded_by},
                **ending.lease_facts(locked),
            )
            session.commit()
            return locked

    def _renewal_decision(
        self,
        session: Session,
        lease: Lease,
        policy: Policy | None,
        identity: WorkloadIdentity,
        ttl: timedelta | None,
        now: datetime,
    ) -> Decision:
        if policy is None:
            return Decision.denied([Reason(NO_POLICY, f"policy {lease.policy!r} no longer exists")])
        view = to_view(policy)
        return renewal_decision(
            identity,
            ttl,
            view,
            Calendar.load(session).facts(view, now),
            now=now,
            secret=lease.secret,
            issued_at=lease.issued_at,
            active_count=count_live(session, policy.name),
            ref_problem=ref_problem(identity),
        )

    # --- ending ----------------------------------------------------------------------------------------

    def release_lease(self, lease_id: str, token: VerifiedToken) -> Lease:
        with self._transaction() as session:
            lease = session.get(Lease, lease_id)
            if lease is None:
                raise NotFound(f"no lease {lease_id!r}")
            _require_owner(lease, token.identity)
        actor = Actor("ci", token.identity.actor_id())
        return self.end_lease(lease_id, final_status=LeaseStatus.RELEASED, end_reason="released", actor=actor)

    def revoke_lease(self, lease_id: str, *, note: str | None, actor: Actor) -> Lease:
        return self.end_lease(
            lease_id, final_status=LeaseStatus.REVOKED, end_reason="revoked", actor=actor, note=note
        )

    def end_lease(
        self,
        lease_id: str,
        *,
        final_status: LeaseStatus,
        end_reason: str,
        actor: Actor,
        note: str | None = None,
    ) -> Lease:
        """End one lease now: intent committed, Vault revocation, confirmation with its ledger event.

        Returns the lease, ``revoking`` when Vault did not confirm (the scheduler keeps trying).
        """
        with self._transaction() as session:
            lease = ending.lock_lease(session, lease_id)
            if lease is None:
                raise NotFound(f"no lease {lease_id!r}")
            _require_active(lease)
            ending.begin_end(
                lease, final_status=final_status, end_reason=end_reason, now=self._clock.now(), note=note
            )
            session.commit()
        return self.finish_revocation(lease_id, actor=actor)

    def finish_revocation(self, lease_id: str, *, actor: Actor = SYSTEM) -> Lease:
        """Revoke at Vault a lease that is ``revoking``, then confirm it or record the failure."""
        with self._transaction() as session:
            lease = session.get(Lease, lease_id)
            assert lease is not None
        try:
            ending.revoke_at_vault(self._vault, lease)
            error: VaultError | None = None
        except VaultError as exc:
            error = exc
        with self._transaction() as session:
            locked = ending.lock_lease(session, lease_id)
            assert locked is not None
            ledger = Ledger(session, self._clock)
            if error is None:
                ending.confirm_end(session, ledger, locked, now=self._clock.now(), actor=actor)
            elif locked.status == LeaseStatus.REVOKING:
                ending.record_failure(ledger, locked, error, now=self._clock.now())
            session.commit()
            return locked

    def revoke_matching(self, lease_ids: Sequence[str], *, note: str | None, actor: Actor) -> int:
        """Revoke each lease that is still active; returns how many this call ended."""
        revoked = 0
        for lease_id in lease_ids:
            try:
                self.end_lease(
                    lease_id, final_status=LeaseStatus.REVOKED, end_reason="revoked", actor=actor, note=note
                )
            except Conflict:
                continue  # it ended on its own meanwhile
            revoked += 1
        return revoked

    # --- re-evaluation ---------------------------------------------------------------------------------

    def reevaluate_active_leases(self, *, policies: set[str] | None, actor: Actor) -> int:
        """End the active leases (under ``policies``; None: all) the configuration no longer grants."""
        return reevaluation.reevaluate(
            self._session, self._vault, self._clock, policies=policies, actor=actor
        )


def _require_owner(lease: Lease, identity: WorkloadIdentity) -> None:
    if lease.workload_key != identity.workload_key():
        raise Forbidden("This lease belongs to another workload.")


def _require_active(lease: Lease) -> None:
    if lease.status != LeaseStatus.ACTIVE:
        raise Conflict(f"The lease has already ended ({lease.status}).", extra={"lease_status": lease.status})


def _require_unexpired(lease: Lease, now: datetime) -> None:
    """Active and not past its expiry: a lease whose time is up is not renewed, even before the scheduler
    has ended it."""
    _require_active(lease)
    if lease.expires_at <= now:
        raise Conflict("The lease has run out; it is being ended.", extra={"lease_status": lease.status})
