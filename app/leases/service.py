"""The lease operations behind one front: what views, pages and scheduler jobs call.

``LeaseService`` only delegates; each operation lives in its own module: ``issuance`` (with ``activation``
and ``replay``), ``renewal``, ``ending`` (release, revoke, end) and ``reevaluation`` (with ``batch``) after
a configuration change. Those modules and the scheduler's claim functions (``app/scheduler/``) are the only
code that changes lease rows; docs/ARCHITECTURE.md, "Who changes lease state, and who commits", says how
each of them commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy.orm import Session

from app.approvals.models import ApprovalRequest
from app.audit.ledger import SYSTEM, Actor
from app.clock import Clock
from app.db import committing
from app.errors import Conflict, NotFound
from app.identity.workload import VerifiedToken, WorkloadIdentity
from app.leases import ending, reevaluation, renewal
from app.leases.denials import EVERY_REFUSAL, RefusalGate
from app.leases.guards import require_owner
from app.leases.issuance import (
    LIVE_STATUSES,
    ConfigSource,
    Issuance,
    IssuedLease,
    LeaseRequest,
    count_live,
    load_config,
    new_lease_id,
)
from app.leases.models import Lease, LeaseStatus
from app.vault.port import SecretBackend

__all__ = [
    "LIVE_STATUSES",
    "ConfigSource",
    "IssuedLease",
    "LeaseRequest",
    "LeaseService",
    "count_live",
    "load_config",
    "new_lease_id",
]


class LeaseService:
    """Each operation owns its transactions on ``session``: it commits before every Vault call and when
    it is done (docs/ARCHITECTURE.md, "Who changes lease state, and who commits")."""

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
        """``source_address``: the requesting client's address, for policies' ``source_networks``
        (``None``: no request, as for a scheduler job; such a policy then denies issuance and renewal).
        ``notify``: queue the approvals' notifications (a webhook is configured)."""
        self._session = session
        self._vault = vault
        self._clock = clock
        self._source_address = source_address
        self._issuance = Issuance(
            session,
            vault,
            clock,
            config=config,
            refusals=refusals,
            source_address=source_address,
            notify=notify,
        )

    def request_lease(self, token: VerifiedToken, request: LeaseRequest) -> IssuedLease | ApprovalRequest:
        return self._issuance.request_lease(token, request)

    def get_lease(self, lease_id: str, *, workload: WorkloadIdentity | None) -> Lease:
        """The lease; a workload may only see its own (``None``: an auditor or admin)."""
        with committing(self._session) as session:
            lease = session.get(Lease, lease_id)
            if lease is None:
                raise NotFound(f"no lease {lease_id!r}")
            if workload is not None:
                require_owner(lease, workload)
            return lease

    def renew_lease(self, lease_id: str, token: VerifiedToken, ttl: timedelta | None) -> Lease:
        return renewal.renew_lease(
            self._session,
            self._vault,
            self._clock,
            lease_id,
            token,
            ttl,
            source_address=self._source_address,
        )

    def release_lease(self, lease_id: str, token: VerifiedToken) -> Lease:
        with committing(self._session) as session:
            lease = session.get(Lease, lease_id)
            if lease is None:
                raise NotFound(f"no lease {lease_id!r}")
            require_owner(lease, token.identity)
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
        """End one lease now; ``revoking`` when Vault did not confirm (see ``ending.end_lease``)."""
        return ending.end_lease(
            self._session,
            self._vault,
            self._clock,
            lease_id,
            final_status=final_status,
            end_reason=end_reason,
            actor=actor,
            note=note,
        )

    def finish_revocation(self, lease_id: str, *, actor: Actor = SYSTEM) -> Lease:
        """Revoke at Vault a lease that is ``revoking``, then confirm it or record the failure."""
        return ending.finish_revocation(self._session, self._vault, self._clock, lease_id, actor=actor)

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

    def reevaluate_active_leases(self, *, policies: set[str] | None, actor: Actor) -> int:
        """End the active leases (under ``policies``; None: all) the configuration no longer grants."""
        return reevaluation.reevaluate(
            self._session, self._vault, self._clock, policies=policies, actor=actor
        )
