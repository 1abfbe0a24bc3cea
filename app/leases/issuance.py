"""Issuing a lease (docs/ARCHITECTURE.md, "The flow of a lease"), and its idempotent replay.

Invariant 2 holds by the order of the steps: decide → write-ahead row (``issuing``) and the token's
single-use record committed → Vault → activate with its ledger event in one transaction, judged again first
if the configuration changed meanwhile (``activation``). A replay under the same idempotency key is judged
like a new request, then handled by ``replay``.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.approvals import metrics as approval_metrics
from app.approvals.models import ApprovalRequest
from app.approvals.service import ApprovalService
from app.audit.ledger import Actor, EventSubject, Ledger
from app.clock import Clock
from app.config_snapshot.generation import read_generation
from app.config_snapshot.snapshot import ConfigSnapshot
from app.db import committing
from app.decision import approvals, outsiders
from app.decision.policy import Decision, Grant, PolicyView, decide
from app.decision.reasons import MAX_ACTIVE_REACHED, NO_POLICY, UNKNOWN_SECRET, Reason
from app.errors import Conflict, PolicyDenied
from app.identity.claims import ref_problem
from app.identity.workload import VerifiedToken, WorkloadIdentity
from app.leases import activation, claims, replay
from app.leases.denials import EVERY_REFUSAL, RefusalGate
from app.leases.guards import require_owner
from app.leases.models import Lease, LeaseStatus, SeenToken
from app.leases.write_ahead import insert_write_ahead
from app.policies.models import Policy
from app.vault.port import SecretBackend, SecretSpec, VaultError
from app.windows.calendar import Calendar

LIVE_STATUSES = (LeaseStatus.ISSUING, LeaseStatus.ACTIVE)


@dataclass(frozen=True, slots=True)
class LeaseRequest:
    secret: str
    ttl: timedelta | None = None
    idempotency_key: str | None = None
    justification: str | None = None  # asks for a break-glass exception (docs/API.md)
    approval: str | None = None  # claims this approved request


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


class Issuance:
    def __init__(
        self,
        session: Session,
        vault: SecretBackend,
        clock: Clock,
        *,
        config: ConfigSource = load_config,
        refusals: RefusalGate = EVERY_REFUSAL,
        source_address: str | None = None,
        notify: bool = False,
    ) -> None:
        self._session = session
        self._approvals = ApprovalService(session, clock, notify=notify)
        self._notify = notify
        self._vault = vault
        self._clock = clock
        self._config = config
        self._refusals = refusals  # limit and burst-count refused requests (see ``denials``)
        self._source_address = source_address  # the client's, for source_networks (docs/API.md)

    def _transaction(self) -> contextlib.AbstractContextManager[Session]:
        """One transaction on the caller's session (Vault is only called between them)."""
        return committing(self._session)

    def request_lease(self, token: VerifiedToken, request: LeaseRequest) -> IssuedLease | ApprovalRequest:
        """The lease, or the approval request it waits for (``202``: the token is not used up)."""
        if request.approval is not None:
            return self._claim(token, request)
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
            if existing is None:  # a replay's lease was approved when it was first granted
                gated = approvals.gate(decision, policies, justification=request.justification)
                if isinstance(gated, approvals.Pending):
                    return self._approvals.open_request(
                        identity,
                        gated,
                        secret=request.secret,
                        justification=request.justification,
                        requested_ttl=request.ttl,
                        source_address=self._source_address,
                        actor=actor,
                    )
            if not decision.allowed or decision.grant is None or secret is None:
                self._deny(session, identity, request, decision.reasons, actor)
            assert decision.grant is not None and secret is not None
            if existing is not None:
                return self._replay(session, existing, token, request, secret, actor, decision.grant)
            policy = next(p for p in policies if p.name == decision.grant.policy)
            if policy.max_active is not None:
                self._hold_max_active(session, policy, identity, request, actor)

            lease, seen = self._write_ahead(session, token, request, secret, policy, decision, now)
            try:
                insert_write_ahead(session, lease, seen)
                session.commit()
            except IntegrityError:
                session.rollback()
                self._refuse_duplicate(session, token, request, actor)
        return self._issue(lease, secret, decision, token, actor, now, decided_at=config.generation)

    def _issue(
        self,
        lease: Lease,
        secret: SecretSpec,
        decision: Decision,
        token: VerifiedToken,
        actor: Actor,
        now: datetime,
        *,
        decided_at: int,
        grant_details: dict[str, Any] | None = None,
        on_grant: Callable[[Session, Lease], None] | None = None,
    ) -> IssuedLease:
        assert decision.grant is not None
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
            activation.issue_failed(self._session, self._clock, lease_id, error)
            if lease.approval_id is not None:
                with self._transaction():
                    self._approvals.reopen(lease.approval_id)
            raise
        activated = activation.activate(
            self._session,
            self._vault,
            self._clock,
            lease_id,
            credential,
            token,
            actor,
            decided_at=decided_at,
            grant_details=grant_details,
            on_grant=on_grant,
        )
        return IssuedLease(activated, credential.data)

    # --- claiming an approved request ---------------------------------------------------------------

    def _claim(self, token: VerifiedToken, request: LeaseRequest) -> IssuedLease:
        """The one lease of an approved request: every check again, now, on the presenting token, except
        what the approval covers (docs/API.md, "Approvals and break-glass")."""
        assert request.approval is not None
        identity = token.identity
        actor = Actor("ci", identity.actor_id())
        with self._transaction() as session:
            now = self._clock.now()
            approval = self._approvals.lock_for_claim(request.approval)
            refusal = claims.refusal(approval, identity, request.secret, now)
            if refusal is not None:
                self._deny(session, identity, request, [refusal], actor)
            config = self._config(session)
            secret = config.secret(request.secret)
            policy = config.policy(approval.policy)
            ttl = request.ttl or claims.requested_ttl(approval)
            decision = self._claim_decision(session, approval, identity, ttl, secret, policy, config, now)
            if not decision.allowed or secret is None or policy is None or decision.grant is None:
                self._deny(session, identity, request, decision.reasons, actor)
            assert secret is not None and policy is not None and decision.grant is not None
            if policy.max_active is not None:
                self._hold_max_active(session, policy, identity, request, actor)
            lease, seen = self._write_ahead(session, token, request, secret, policy, decision, now)
            session.add_all([seen, lease])
            lease.approval_id = approval.id
            lease.break_glass = approval.kind == approvals.BREAK_GLASS
            lease.max_expires_at = min(
                lease.max_expires_at, decision.grant.latest_end or lease.max_expires_at
            )
            self._approvals.mark_used(approval, lease.id, actor)
            approvers = self._approvals.approvals_of(approval.id)
            details = claims.grant_details(approval, approvers)
            try:
                session.commit()
            except IntegrityError:
                session.rollback()
                self._refuse_duplicate(session, token, request, actor)
        announce = None
        if lease.break_glass and self._notify:
            announce = claims.announce_break_glass(self._clock, approval, approvers)
        issued = self._issue(
            lease,
            secret,
            decision,
            token,
            actor,
            now,
            decided_at=config.generation,
            grant_details=details,
            on_grant=announce,
        )
        if issued.lease.break_glass:
            approval_metrics.break_glass_granted().labels(policy=issued.lease.policy).inc()
        return issued

    def _claim_decision(
        self,
        session: Session,
        approval: ApprovalRequest,
        identity: WorkloadIdentity,
        ttl: timedelta | None,
        secret: SecretSpec | None,
        policy: PolicyView | None,
        config: ConfigSnapshot,
        now: datetime,
    ) -> Decision:
        if secret is None:
            return Decision.denied([Reason(UNKNOWN_SECRET, f"secret {approval.secret!r} is not known")])
        if policy is None:
            return Decision.denied([Reason(NO_POLICY, f"policy {approval.policy!r} no longer exists")])
        return approvals.claim_decision(
            claims.kind_of(approval),
            identity,
            ttl,
            policy,
            config.calendar.facts(policy, now),
            now=now,
            secret=secret.name,
            active_count=count_live(session, policy.name) if policy.max_active is not None else 0,
            ref_problem=ref_problem(identity),
            source_address=self._source_address,
        )

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
            source_address=self._source_address,
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
            details={"identity": identity.to_dict(), "source_address": self._source_address},
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
    ) -> tuple[Lease, SeenToken]:
        """The ``issuing`` row and the token's single-use record, not yet in the session."""
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
            source_address=self._source_address,
            break_glass=False,
            revoke_attempts=0,
            created_at=now,
            updated_at=now,
        )
        return lease, SeenToken(replay_key=token.replay_key, lease_id=lease.id, expires_at=token.expires_at)

    def _refuse_duplicate(
        self, session: Session, token: VerifiedToken, request: LeaseRequest, actor: Actor
    ) -> None:
        if session.get(SeenToken, token.replay_key) is not None:
            replay.refuse_token(
                session, self._clock, token, actor, identity_facts(token.identity, request.secret)
            )
        raise Conflict("A lease with this idempotency key is being issued right now; retry shortly.")

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
        require_owner(lease, token.identity)
        replay.require_running(lease, self._clock.now())
        lease.source_address = self._source_address  # the address this grant was judged for
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
