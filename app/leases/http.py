"""What views need to reach the lease service; also used by configuration views after a change."""

from __future__ import annotations

from app.http import config_snapshot, current_actor, db_session, runtime
from app.leases.denials import request_refusals
from app.leases.service import LeaseService
from app.ratelimit import app_limiter, client_address


def lease_service() -> LeaseService:
    rt = runtime()
    refusals = request_refusals(client_address(), app_limiter(), rt.clock)
    return LeaseService(
        db_session(), rt.vault, rt.clock, config=lambda _session: config_snapshot(), refusals=refusals
    )


def reevaluate_after_change(*, policies: set[str] | None) -> int:
    """Re-evaluate, at once, the active leases a configuration change governs (``None``: every policy)."""
    if policies is not None and not policies:
        return 0
    db_session().commit()  # the change itself is committed before leases are revoked because of it
    return lease_service().reevaluate_active_leases(policies=policies, actor=current_actor())
