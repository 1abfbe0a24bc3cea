"""Policy evaluation: may this workload have this secret now, and until when.

Pure: no Flask, no database, no clock. Everything time-dependent arrives as data — the instant ``now`` and,
per policy, the :class:`CalendarFacts` its caller computed from the windows and freezes. Every failing rule
is reported, each :class:`~app.decision.reasons.Reason` naming its policy (docs/ARCHITECTURE.md, invariant 1).

Messages name the offending identity value and what the policy allows; identity values are shown escaped
and shortened (:func:`_show`), so a crafted claim cannot forge lines in a log or a page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from app.decision.context_rules import context_reasons
from app.decision.identity import WorkloadIdentity
from app.decision.identity_rules import DEFAULT_EVENTS, identity_reasons
from app.decision.intervals import Interval
from app.decision.messages import duration, escape, listing, show
from app.decision.policy_view import PolicyView
from app.decision.reasons import (
    FREEZE_ACTIVE,
    MAX_ACTIVE_REACHED,
    MAX_TTL_REACHED,
    NO_POLICY,
    OUTSIDE_WINDOW,
    UNKNOWN_SECRET,
    Reason,
)
from app.decision.ttl import BoundedBy, bound_expiry, latest_reachable_end
from app.instants import format_instant

__all__ = [
    "DEFAULT_EVENTS",
    "MAX_TTL_REACHED",
    "BoundedBy",
    "CalendarFacts",
    "Decision",
    "FreezeFact",
    "Grant",
    "PolicyView",
    "check_policy",
    "decide",
    "renewal_decision",
]


# --- data ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FreezeFact:
    """A freeze that applies to the policy and covers ``now``."""

    name: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CalendarFacts:
    """The calendar as one policy sees it at ``now``, computed by the caller from windows and freezes.

    ``open_interval``: the merged window interval minus applicable freezes that contains ``now``, or ``None``.
    ``next_opening``: the next instant such an interval begins (``None``: none within the look-ahead, a year).
    ``next_freeze_start``: the start of the next applicable freeze after ``now``, or ``None``.
    """

    open_interval: Interval | None
    active_freeze: FreezeFact | None = None
    next_opening: datetime | None = None
    next_freeze_start: datetime | None = None


@dataclass(frozen=True, slots=True)
class Grant:
    policy: str
    expires_at: datetime
    bounded_by: BoundedBy
    ttl: timedelta  # expires_at - the instant of the grant (or renewal)
    # The latest end renewals could reach, as known now (ttl.latest_reachable_end); not part of equality.
    latest_end: datetime | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Decision:
    """Either a grant and no reasons, or no grant and at least one reason."""

    allowed: bool
    grant: Grant | None
    reasons: tuple[Reason, ...]

    def __post_init__(self) -> None:
        if self.allowed != (self.grant is not None) or self.allowed == bool(self.reasons):
            raise ValueError("a Decision is a grant without reasons or a denial with reasons")

    @classmethod
    def granted(cls, grant: Grant) -> Decision:
        return cls(allowed=True, grant=grant, reasons=())

    @classmethod
    def denied(cls, reasons: Sequence[Reason]) -> Decision:
        return cls(allowed=False, grant=None, reasons=tuple(reasons))


# --- helpers ---------------------------------------------------------------------------------------------


def _require_aware(name: str, instant: datetime) -> None:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware instant")


# --- the rules -------------------------------------------------------------------------------------------


def _check_calendar(policy: PolicyView, facts: CalendarFacts) -> list[Reason]:
    if facts.active_freeze is not None:
        freeze = facts.active_freeze
        because = f": {escape(freeze.reason)}" if freeze.reason else ""
        message = f"freeze {show(freeze.name)} is in effect{because}"
        if facts.next_opening is not None:
            message += f"; the next opening is at {format_instant(facts.next_opening)}"
        return [Reason(FREEZE_ACTIVE, message, policy.name)]
    if facts.open_interval is None:
        windows = listing(policy.windows)
        if facts.next_opening is not None:
            opening = format_instant(facts.next_opening)
            message = f"outside the windows ({windows}); the next opening is at {opening}"
        else:
            message = f"outside the windows ({windows}); none opens within a year"
        return [Reason(OUTSIDE_WINDOW, message, policy.name)]
    return []


def check_policy(
    identity: WorkloadIdentity,
    policy: PolicyView,
    *,
    facts: CalendarFacts,
    active_count: int,
    ref_problem: str | None,
    source_address: str | None = None,
) -> list[Reason]:
    """Every rule of ``policy`` that ``identity`` fails at the instant ``facts`` describe; empty: it passes.

    ``active_count``: leases active under the policy that count against ``max_active``.
    ``ref_problem``: why the token's ref failed validation (docs/ARCHITECTURE.md: no ``..``,
    control characters, ``//``, over 255 bytes), or ``None``; an invalid ref is reported as such and never
    matched or shown.
    ``source_address``: the client's address as the broker resolved it (after the trusted proxy hops), or
    ``None`` when there is none; only a policy with ``source_networks`` reads it, and ``None`` fails it.
    """
    reasons = identity_reasons(identity, policy, ref_problem=ref_problem)
    reasons.extend(context_reasons(identity, policy, source_address=source_address))
    reasons.extend(_check_calendar(policy, facts))

    if policy.max_active is not None and active_count >= policy.max_active:
        reasons.append(
            Reason(
                MAX_ACTIVE_REACHED,
                f"{active_count} leases are active under this policy, its max_active is {policy.max_active}",
                policy.name,
            )
        )
    return reasons


# --- expiry ----------------------------------------------------------------------------------------------


def _grant(
    policy: PolicyView,
    facts: CalendarFacts,
    *,
    now: datetime,
    requested_ttl: timedelta | None,
    max_end: datetime,
) -> Grant:
    interval = facts.open_interval
    if interval is None or not interval.contains(now):
        raise ValueError(f"the calendar facts of policy {policy.name!r} do not put now in an open interval")
    ttl = policy.default_ttl if requested_ttl is None else requested_ttl
    expires_at, bounded_by = bound_expiry(now, ttl, max_end, interval, facts.next_freeze_start)
    if expires_at <= now:
        raise ValueError(f"policy {policy.name!r} bounds the lease to end at or before now")
    latest = max(latest_reachable_end(max_end, interval, facts.next_freeze_start), expires_at)
    return Grant(policy.name, expires_at, bounded_by, expires_at - now, latest_end=latest)


def _check_requested_ttl(requested_ttl: timedelta | None) -> None:
    if requested_ttl is not None and requested_ttl <= timedelta(0):
        raise ValueError("requested_ttl must be positive")


# --- decisions -------------------------------------------------------------------------------------------


def decide(
    identity: WorkloadIdentity,
    requested_ttl: timedelta | None,
    candidates: Sequence[tuple[PolicyView, CalendarFacts, int]],
    *,
    now: datetime,
    secret_known: bool,
    ref_problem: str | None,
    secret: str | None = None,
    source_address: str | None = None,
) -> Decision:
    """The decision on a new lease request.

    ``candidates``: the policies that name the requested secret, each with its calendar facts at ``now``
    and its count of active leases. The first policy by name that passes every rule grants; when none does,
    the denial carries the reasons of every candidate. ``requested_ttl`` ``None`` takes the granting policy's
    ``default_ttl``. ``secret`` (the requested name) only makes messages more precise; when given,
    candidates that do not name it are left out. The reasons are for insiders and admins: what an outsider
    may see of them is :func:`app.decision.outsiders.for_requester`'s to decide. ``source_address``: the
    client's address, as for :func:`check_policy`.
    """
    _require_aware("now", now)
    _check_requested_ttl(requested_ttl)
    which = f"secret {show(secret)}" if secret is not None else "the requested secret"
    if not secret_known:
        return Decision.denied([Reason(UNKNOWN_SECRET, f"{which} is not known")])
    relevant = [c for c in candidates if secret is None or secret in c[0].secrets]
    if not relevant:
        return Decision.denied([Reason(NO_POLICY, f"no policy names {which}")])

    reasons: list[Reason] = []
    for policy, facts, active_count in sorted(relevant, key=lambda c: c[0].name):
        failed = check_policy(
            identity,
            policy,
            facts=facts,
            active_count=active_count,
            ref_problem=ref_problem,
            source_address=source_address,
        )
        if not failed:
            grant = _grant(policy, facts, now=now, requested_ttl=requested_ttl, max_end=now + policy.max_ttl)
            return Decision.granted(grant)
        reasons.extend(failed)
    return Decision.denied(reasons)


def renewal_decision(
    identity: WorkloadIdentity,
    requested_ttl: timedelta | None,
    policy: PolicyView,
    facts: CalendarFacts,
    *,
    now: datetime,
    secret: str,
    issued_at: datetime,
    active_count: int,
    ref_problem: str | None,
    source_address: str | None = None,
) -> Decision:
    """The decision on renewing a lease granted under ``policy`` for ``secret`` at ``issued_at``.

    The same rules as :func:`decide`, with the lease's own policy as the only candidate, except:
    ``max_ttl`` counts from ``issued_at`` (the lease's whole life, renewals included), and ``active_count``
    — the leases active under the policy, this one included, since it is active while it is renewed — is
    compared with ``max_active`` without the lease itself. A policy that no longer names the secret denies
    with ``no_policy``; a lease that has lived its ``max_ttl`` denies with :data:`MAX_TTL_REACHED`.
    """
    _require_aware("now", now)
    _require_aware("issued_at", issued_at)
    _check_requested_ttl(requested_ttl)
    reasons: list[Reason] = []
    if secret not in policy.secrets:
        reasons.append(Reason(NO_POLICY, f"the policy no longer names secret {show(secret)}", policy.name))
    others = max(active_count - 1, 0)
    reasons += check_policy(
        identity,
        policy,
        facts=facts,
        active_count=others,
        ref_problem=ref_problem,
        source_address=source_address,
    )
    max_end = issued_at + policy.max_ttl
    if max_end <= now:
        reasons.append(
            Reason(
                MAX_TTL_REACHED,
                f"the lease has lived the policy's max_ttl of {duration(policy.max_ttl)} "
                f"since it was issued at {format_instant(issued_at)}",
                policy.name,
            )
        )
    if reasons:
        return Decision.denied(reasons)
    return Decision.granted(_grant(policy, facts, now=now, requested_ttl=requested_ttl, max_end=max_end))
