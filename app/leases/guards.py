"""The checks every lease operation makes on the lease it was asked about (pure: they only raise)."""

from __future__ import annotations

from datetime import datetime

from app.errors import Conflict, Forbidden
from app.identity.workload import WorkloadIdentity
from app.leases.models import Lease, LeaseStatus


def require_owner(lease: Lease, identity: WorkloadIdentity) -> None:
    if lease.workload_key != identity.workload_key():
        raise Forbidden("This lease belongs to another workload.")


def require_active(lease: Lease) -> None:
    if lease.status != LeaseStatus.ACTIVE:
        raise Conflict(f"The lease has already ended ({lease.status}).", extra={"lease_status": lease.status})


def require_unexpired(lease: Lease, now: datetime) -> None:
    """Active and not past its expiry: a lease whose time is up is not renewed, even before the scheduler
    has ended it."""
    require_active(lease)
    if lease.expires_at <= now:
        raise Conflict("The lease has run out; it is being ended.", extra={"lease_status": lease.status})
