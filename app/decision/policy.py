"""Policy evaluation: may this workload have this secret now, and until when.

Pure: no Flask, no database, no clock. Everything time-dependent arrives as data — the instant ``now`` and,
per policy, the :class:`CalendarFacts` its caller computed from the windows and freezes. Every failing rule
is reported, each :class:`~app.decision.reasons.Reason` naming its policy (DESIGN.md, invariant 1).

Messages name the offending identity value and what the policy allows; identity values are shown escaped
and shortened (:func:`_show`), so a crafted claim cannot forge lines in a log or a page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from app.decision.intervals import Interval
from app.decision.patterns import matches_any
from app.decision.reasons import (
    BRANCH_NOT_ALLOWED,
    ENVIRONMENT_NOT_ALLOWED,
    EVENT_NOT_ALLOWED,
    FREEZE_ACTIVE,
    INVALID_REF,
    ISSUER_NOT_ALLOWED,
    MAX_ACTIVE_REACHED,
    MAX_TTL_REACHED,
    NO_POLICY,
    OUTSIDE_WINDOW,
    REF_NOT_PROTECTED,
    REPOSITORY_NOT_ALLOWED,
    RUNNER_NOT_ALLOWED,
    TAG_NOT_ALLOWED,
    UNKNOWN_SECRET,
    Reason,
)
from app.decision.ttl import BoundedBy, bound_expiry
from app.identity.workload import WorkloadIdentity

__all__ = [
    "DEFAULT_DENIED_EVENTS",
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

# Events a policy without an ``events`` list does not grant: they run code from outside the repository's
# trusted branches (forks, merge requests), so a policy has to name them to allow them (API.md, "Policies").
DEFAULT_DENIED_EVENTS: frozenset[str] = frozenset(
    {"pull_request", "pull_request_target", "merge_request_event"}
)

# Renewal only: the lease has lived its whole max_ttl since issued_at. Not among API.md's codes (a lease at
# that point has expired already, so the service should answer 409 before asking); kept here until
# app/decision/reasons.py takes it.


_SHOW_LIMIT = 120


# --- data ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyView:
    """What the decision needs of a stored policy.

    ``repositories``, ``branches``, ``tags``: patterns; empty allows nothing. ``environments``,
    ``runner_environments``, ``runner_ids``: exact values; empty means no restriction. ``events``: ``None``
    means every event but :data:`DEFAULT_DENIED_EVENTS`; a tuple allows exactly its events (empty: none).
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


def _escape(value: str) -> str:
    """``value`` for a message: non-printable characters escaped, long values shortened."""
    shown = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in value[:_SHOW_LIMIT])
    return f"{shown}…" if len(value) > _SHOW_LIMIT else shown


def _show(value: str) -> str:
    return f"'{_escape(value)}'"


def _duration(length: timedelta) -> str:
    """``1h30m``, the duration notation of API.md."""
    seconds = int(length.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def _listing(values: Sequence[str]) -> str:
    return ", ".join(values)


def _rfc3339(instant: datetime) -> str:
    utc = instant.astimezone(UTC)
    timespec = "microseconds" if utc.microsecond else "seconds"
    return utc.replace(tzinfo=None).isoformat(timespec=timespec) + "Z"


def _require_aware(name: str, instant: datetime) -> None:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware instant")


# --- the rules -------------------------------------------------------------------------------------------


def _check_ref(identity: WorkloadIdentity, policy: PolicyView) -> list[Reason]:
    name = policy.name
    if identity.ref_type == "branch" and identity.branch is not None:
        if not policy.branches:
            message = f"branch {_show(identity.branch)} is not allowed: this policy allows no branches"
        elif matches_any(policy.branches, identity.branch):
            return []
        else:
            message = f"branch {_show(identity.branch)} does not match any of: {_listing(policy.branches)}"
        return [Reason(BRANCH_NOT_ALLOWED, message, name)]
    if identity.ref_type == "tag" and identity.tag is not None:
        if not policy.tags:
            message = f"tag {_show(identity.tag)} is not allowed: this policy allows no tags"
        elif matches_any(policy.tags, identity.tag):
            return []
        else:
            message = f"tag {_show(identity.tag)} does not match any of: {_listing(policy.tags)}"
        return [Reason(TAG_NOT_ALLOWED, message, name)]
    # Neither a branch nor a tag as far as the token says (a pull-request merge ref, a missing claim...).
    if identity.ref is None:
        message = "the token states neither a branch nor a tag; policies grant only those"
    else:
        message = f"ref {_show(identity.ref)} is neither a branch nor a tag; policies grant only those"
    return [Reason(BRANCH_NOT_ALLOWED, message, name)]


def _check_events(identity: WorkloadIdentity, policy: PolicyView) -> list[Reason]:
    event = identity.event
    if policy.events is None:
        # Unknown events deny here too: untrusted code must opt in, and an unstated event might be one.
        if event is None:
            message = (
                "the token does not state its event; without an events list this policy grants only "
                f"known events other than {_listing(sorted(DEFAULT_DENIED_EVENTS))}"
            )
        elif event in DEFAULT_DENIED_EVENTS:
            message = (
                f"event {_show(event)} runs untrusted code and must be listed in the policy's events "
                "to be allowed"
            )
        else:
            return []
    elif event is not None and event in policy.events:
        return []
    elif not policy.events:
        message = "this policy allows no events (its events list is empty)"
    elif event is None:
        message = f"the token does not state its event; allowed: {_listing(policy.events)}"
    else:
        message = f"event {_show(event)} is not one of: {_listing(policy.events)}"
    return [Reason(EVENT_NOT_ALLOWED, message, policy.name)]


def _check_calendar(policy: PolicyView, facts: CalendarFacts) -> list[Reason]:
    if facts.active_freeze is not None:
        freeze = facts.active_freeze
        because = f": {_escape(freeze.reason)}" if freeze.reason else ""
        message = f"freeze {_show(freeze.name)} is in effect{because}"
        if facts.next_opening is not None:
            message += f"; the next opening is at {_rfc3339(facts.next_opening)}"
        return [Reason(FREEZE_ACTIVE, message, policy.name)]
    if facts.open_interval is None:
        windows = _listing(policy.windows)
        if facts.next_opening is not None:
            message = (
                f"outside the windows ({windows}); the next opening is at {_rfc3339(facts.next_opening)}"
            )
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
) -> list[Reason]:
    """Every rule of ``policy`` that ``identity`` fails at the instant ``facts`` describe; empty: it passes.

    ``active_count``: leases active under the policy that count against ``max_active``.
    ``ref_problem``: why the token's ref failed validation (DESIGN.md: no ``..``, control characters, ``//``,
    over 255 bytes), or ``None``; an invalid ref is reported as such and never matched or shown.
    """
    name = policy.name
    reasons: list[Reason] = []

    if identity.issuer != policy.issuer:
        reasons.append(
            Reason(
                ISSUER_NOT_ALLOWED,
                f"issuer {_show(identity.issuer)} is not this policy's issuer {_show(policy.issuer)}",
                name,
            )
        )

    if ref_problem is not None:
        reasons.append(Reason(INVALID_REF, f"the token's ref is invalid: {ref_problem}", name))

    if identity.repository is None:
        reasons.append(Reason(REPOSITORY_NOT_ALLOWED, "the token states no repository", name))
    elif not policy.repositories:
        reasons.append(
            Reason(
                REPOSITORY_NOT_ALLOWED,
                f"repository {_show(identity.repository)} is not allowed: this policy allows no repositories",
                name,
            )
        )
    elif not matches_any(policy.repositories, identity.repository):
        reasons.append(
            Reason(
                REPOSITORY_NOT_ALLOWED,
                f"repository {_show(identity.repository)} does not match any of: "
                f"{_listing(policy.repositories)}",
                name,
            )
        )

    if ref_problem is None:
        reasons.extend(_check_ref(identity, policy))

    if policy.require_protected_ref and identity.ref_protected is not True:
        if identity.ref_protected is None:
            message = (
                "the token does not state whether the ref is protected; this policy requires a protected ref"
            )
        else:
            message = "the ref is not protected; this policy requires a protected ref"
        reasons.append(Reason(REF_NOT_PROTECTED, message, name))

    if policy.environments and identity.environment not in policy.environments:
        if identity.environment is None:
            message = f"the job names no environment; allowed: {_listing(policy.environments)}"
        else:
            message = (
                f"environment {_show(identity.environment)} is not one of: {_listing(policy.environments)}"
            )
        reasons.append(Reason(ENVIRONMENT_NOT_ALLOWED, message, name))

    if policy.runner_environments and identity.runner_environment not in policy.runner_environments:
        if identity.runner_environment is None:
            message = (
                f"the token states no runner environment; allowed: {_listing(policy.runner_environments)}"
            )
        else:
            message = (
                f"runner environment {_show(identity.runner_environment)} is not one of: "
                f"{_listing(policy.runner_environments)}"
            )
        reasons.append(Reason(RUNNER_NOT_ALLOWED, message, name))

    if policy.runner_ids and identity.runner_id not in policy.runner_ids:
        if identity.runner_id is None:
            message = f"the token states no runner id; allowed: {_listing(policy.runner_ids)}"
        else:
            message = f"runner id {_show(identity.runner_id)} is not one of: {_listing(policy.runner_ids)}"
        reasons.append(Reason(RUNNER_NOT_ALLOWED, message, name))

    reasons.extend(_check_events(identity, policy))
    reasons.extend(_check_calendar(policy, facts))

    if policy.max_active is not None and active_count >= policy.max_active:
        reasons.append(
            Reason(
                MAX_ACTIVE_REACHED,
                f"{active_count} leases are active under this policy, its max_active is {policy.max_active}",
                name,
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
    return Grant(policy=policy.name, expires_at=expires_at, bounded_by=bounded_by, ttl=expires_at - now)


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
) -> Decision:
    """The decision on a new lease request.

    ``candidates``: the policies that name the requested secret, each with its calendar facts at ``now``
    and its count of active leases. The first policy by name that passes every rule grants; when none does,
    the denial carries the reasons of every candidate. ``requested_ttl`` ``None`` takes the granting policy's
    ``default_ttl``. ``secret`` (the requested name) only makes messages more precise; when given,
    candidates that do not name it are left out.
    """
    _require_aware("now", now)
    _check_requested_ttl(requested_ttl)
    which = f"secret {_show(secret)}" if secret is not None else "the requested secret"
    if not secret_known:
        return Decision.denied([Reason(UNKNOWN_SECRET, f"{which} is not known")])
    relevant = [c for c in candidates if secret is None or secret in c[0].secrets]
    if not relevant:
        return Decision.denied([Reason(NO_POLICY, f"no policy names {which}")])

    reasons: list[Reason] = []
    for policy, facts, active_count in sorted(relevant, key=lambda c: c[0].name):
        failed = check_policy(
            identity, policy, facts=facts, active_count=active_count, ref_problem=ref_problem
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
        reasons.append(Reason(NO_POLICY, f"the policy no longer names secret {_show(secret)}", policy.name))
    others = max(active_count - 1, 0)
    reasons += check_policy(identity, policy, facts=facts, active_count=others, ref_problem=ref_problem)
    max_end = issued_at + policy.max_ttl
    if max_end <= now:
        reasons.append(
            Reason(
                MAX_TTL_REACHED,
                f"the lease has lived the policy's max_ttl of {_duration(policy.max_ttl)} "
                f"since it was issued at {_rfc3339(issued_at)}",
                policy.name,
            )
        )
    if reasons:
        return Decision.denied(reasons)
    return Decision.granted(_grant(policy, facts, now=now, requested_ttl=requested_ttl, max_end=max_end))
