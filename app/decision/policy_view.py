"""What the decision core needs of a stored policy: plain data, no ORM row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True, slots=True, kw_only=True)
class ApprovalRule:
    """Who must agree before a lease is granted (docs/API.md, "Approvals and break-glass").

    ``required``: distinct approvers needed. ``approvers``: broker token names allowed to approve; empty
    means any admin or approver token. ``timeout``: a pending request expires after it. ``max_ttl``: for
    break-glass only, the longest a lease granted by the exception may live.
    """

    required: int
    approvers: tuple[str, ...]
    timeout: timedelta
    max_ttl: timedelta | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyView:
    """A policy as the decision core reads it.

    ``repositories``, ``branches``, ``tags``: patterns; empty allows nothing. ``environments``,
    ``runner_environments``, ``runner_ids``: exact values; empty means no restriction. ``events``: ``None``
    means the trusted default events (:data:`app.decision.identity_rules.DEFAULT_EVENTS`); a tuple allows
    exactly its events (empty: none). ``repository_ids``: ``None`` means no restriction; otherwise the
    token's repository id must be one of them (as strings) as well as its name matching ``repositories``.
    ``workflows``: ``None`` means no restriction; otherwise patterns the workload's workflow must match.
    ``source_networks``: ``None`` means no restriction; otherwise CIDR blocks, one of which must hold the
    client address (:mod:`app.decision.context_rules`). ``approval``, ``break_glass``: ``None`` means none.
    """

    name: str
    issuer: str  # the Transom issuer name, compared with WorkloadIdentity.issuer
    secrets: tuple[str, ...]
    repositories: tuple[str, ...]
    branches: tuple[str, ...]
    tags: tuple[str, ...]
    require_protected_ref: bool
    environments: tuple[str, ...]
    runner_environments: tuple[str, ...]
    runner_ids: tuple[str, ...]
    events: tuple[str, ...] | None
    windows: tuple[str, ...]
    default_ttl: timedelta
    max_ttl: timedelta
    max_active: int | None
    repository_ids: tuple[str, ...] | None = None
    require_protected_environment: bool = False
    workflows: tuple[str, ...] | None = None
    source_networks: tuple[str, ...] | None = None
    # Every lease waits for people to approve it; a request refused only by the calendar may ask people
    # for an exception (app/decision/approvals.py).
    approval: ApprovalRule | None = None
    break_glass: ApprovalRule | None = None
