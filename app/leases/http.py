"""What views need to reach the lease service; also used by configuration views after a change."""

from __future__ import annotations

from app.http import current_actor, runtime
from app.leases.service import LeaseService


def lease_service() -> LeaseService:
    rt = runtime()
    return LeaseService(rt.sessions, rt.vault, rt.clock)


def reevaluate_after_change(*, policies: set[str] | None) -> int:
    """Re-evaluate, at once, the active leases a configuration change governs (``None``: every policy)."""
    if policies is not None and not policies:
        return 0
    return lease_service().reevaluate_active_leases(policies=policies, actor=current_actor())
