"""Approvals and break-glass, decided (docs/API.md, "Approvals and break-glass"; docs/ARCHITECTURE.md).

Pure, like the rest of the core: the caller hands in the policies, the calendar facts, the identities and the
instant. Three questions are answered here:

- what a lease request becomes (:func:`gate`): granted, denied, or a request people must approve — every lease
  under a policy with ``approval``, or a break-glass exception when the only refusals are the calendar's
  (``outside_window``, ``freeze_active``), the policy has ``break_glass`` and the request carries a
  justification;
- whether a token may approve (:func:`approver_refusal`): never the requesting workload's own actor, only the
  policy's approvers;
- what claiming an approved request obtains (:func:`claim_decision`): every check again, now, except what the
  approval covers (the calendar, for break-glass), a break-glass lease bounded by the exception's ``max_ttl``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from app.decision.identity import WorkloadIdentity
from app.decision.messages import listing, show
from app.decision.policy import CalendarFacts, Decision, Grant, check_policy, decide
from app.decision.policy_view import ApprovalRule, PolicyView
from app.decision.reasons import (
    FREEZE_ACTIVE,
    MAX_ACTIVE_REACHED,
    MAX_TTL_REACHED,
    NO_POLICY,
    NOT_AN_APPROVER,
    OUTSIDE_WINDOW,
    SELF_APPROVAL,
    Reason,
)
from app.decision.ttl import bound_break_glass

Kind = Literal["approval", "break_glass"]
APPROVAL: Kind = "approval"
BREAK_GLASS: Kind = "break_glass"

# The only refusals a break-glass exception may excuse.
CALENDAR_CODES = frozenset({OUTSIDE_WINDOW, FREEZE_ACTIVE})
APPROVER_ROLES = frozenset({"admin", "approver"})
MAX_JUSTIFICATION = 500


@dataclass(frozen=True, slots=True)
class Pending:
    """The request must wait for people: ``kind`` under ``policy``'s ``rule``."""

    kind: Kind
    policy: str
    rule: ApprovalRule


def rule_of(policy: PolicyView, kind: Kind) -> ApprovalRule | None:
    return policy.approval if kind == APPROVAL else policy.break_glass


def _calendar_only(reasons: Sequence[Reason]) -> dict[str, set[str]]:
    """The codes of each policy's refusals, by policy name."""
    codes: dict[str, set[str]] = {}
    for reason in reasons:
        if reason.policy is not None:
            codes.setdefault(reason.policy, set()).add(reason.code)
    return codes


def break_glass_policy(denial: Decision, policies: Sequence[PolicyView]) -> PolicyView | None:
    """The first policy (by name) with ``break_glass`` that refused ``denial`` only for calendar reasons."""
    codes = _calendar_only(denial.reasons)
    for policy in sorted(policies, key=lambda p: p.name):
        refused = codes.get(policy.name)
        if policy.break_glass is not None and refused and refused <= CALENDAR_CODES:
            return policy
    return None


def gate(
    decision: Decision, policies: Sequence[PolicyView], *, justification: str | None
) -> Decision | Pending:
    """What a new lease request becomes, given the ordinary ``decision`` on it.

    A grant under a policy with ``approval`` waits for approval. A denial becomes a break-glass request only
    when it carries a ``justification`` and some policy with ``break_glass`` refused it for nothing but its
    windows and freezes; every other denial stands. ``policies``: those that name the secret.
    """
    if decision.grant is not None:
        granting = next((p for p in policies if p.name == decision.grant.policy), None)
        if granting is not None and granting.approval is not None:
            return Pending(APPROVAL, granting.name, granting.approval)
        return decision
    if justification is None:
        return decision
    exception = break_glass_policy(decision, policies)
    if exception is None or exception.break_glass is None:
        return decision
    return Pending(BREAK_GLASS, exception.name, exception.break_glass)


def approver_refusal(
    rule: ApprovalRule, *, name: str, role: str, ci_login: str | None, requester: WorkloadIdentity
) -> Reason | None:
    """Why the broker token ``name`` (``role``, the person's ``ci_login``) may not decide a request of
    ``requester`` under ``rule``; ``None``: it may. Self-approval is judged first: it is the graver fault."""
    if ci_login is not None and ci_login in (requester.actor, requester.triggering_actor):
        return Reason(SELF_APPROVAL, f"{show(ci_login)} requested this lease and cannot approve it")
    if role not in APPROVER_ROLES:
        return Reason(NOT_AN_APPROVER, f"the {role} role cannot approve or deny requests")
    if rule.approvers and name not in rule.approvers:
        return Reason(
            NOT_AN_APPROVER, f"token {show(name)} is not among the approvers ({listing(rule.approvers)})"
        )
    return None


def is_approved(approvers: Sequence[str], rule_required: int) -> bool:
    """Approved once ``rule_required`` distinct approvers approved."""
    return len(set(approvers)) >= rule_required


def standing_reasons(
    kind: Kind,
    identity: WorkloadIdentity,
    policy: PolicyView | None,
    facts: CalendarFacts | None,
    *,
    secret: str,
    ref_problem: str | None,
    source_address: str | None,
) -> list[Reason]:
    """Why the configuration as it is now no longer grants an open request (after a change); empty: it still
    does. The calendar (which moves by itself, and which a break-glass request is excused from; a claim
    judges it again) and ``max_active`` (a count, not a rule) are left out."""
    if policy is None or facts is None:
        return [Reason(NO_POLICY, "the request's policy no longer exists")]
    reasons = [
        r
        for r in check_policy(
            identity,
            policy,
            facts=facts,
            active_count=0,
            ref_problem=ref_problem,
            source_address=source_address,
        )
        if r.code not in CALENDAR_CODES
    ]
    if secret not in policy.secrets:
        reasons.append(Reason(NO_POLICY, f"the policy no longer names secret {show(secret)}", policy.name))
    if rule_of(policy, kind) is None:
        reasons.append(
            Reason(NO_POLICY, f"the policy no longer allows {kind.replace('_', '-')}", policy.name)
        )
    return reasons


def claim_decision(
    kind: Kind,
    identity: WorkloadIdentity,
    requested_ttl: timedelta | None,
    policy: PolicyView,
    facts: CalendarFacts,
    *,
    now: datetime,
    secret: str,
    active_count: int,
    ref_problem: str | None,
    source_address: str | None,
) -> Decision:
    """The decision on claiming an approved request of ``kind`` under ``policy``: every rule again, now,
    with the claiming token's identity, except what the approval covered — nothing for ``approval``, the
    windows and freezes for ``break_glass``. A break-glass lease lives at most the exception's ``max_ttl``
    (``bounded_by: "break_glass"`` when that binds) and is bounded by no window or freeze."""
    if kind == APPROVAL:
        return decide(
            identity,
            requested_ttl,
            [(policy, facts, active_count)],
            now=now,
            secret_known=True,
            ref_problem=ref_problem,
            secret=secret,
            source_address=source_address,
        )
    reasons = standing_reasons(
        kind, identity, policy, facts, secret=secret, ref_problem=ref_problem, source_address=source_address
    )
    if policy.max_active is not None and active_count >= policy.max_active:
        message = f"{active_count} leases are active under this policy, its max_active is {policy.max_active}"
        reasons.append(Reason(MAX_ACTIVE_REACHED, message, policy.name))
    if reasons or policy.break_glass is None:
        return Decision.denied(reasons)
    return Decision.granted(
        break_glass_grant(policy, policy.break_glass, now=now, requested_ttl=requested_ttl)
    )


def break_glass_grant(
    policy: PolicyView,
    rule: ApprovalRule,
    *,
    now: datetime,
    requested_ttl: timedelta | None,
    issued_at: datetime | None = None,
) -> Grant:
    """A break-glass lease's bounds from ``issued_at`` (default ``now``; earlier for a renewal)."""
    start = issued_at or now
    ttl = policy.default_ttl if requested_ttl is None else requested_ttl
    exception_end = start + (rule.max_ttl or policy.max_ttl)
    max_end = start + policy.max_ttl
    expires_at, bounded_by = bound_break_glass(now, ttl, max_end, exception_end)
    return Grant(
        policy.name, expires_at, bounded_by, expires_at - now, latest_end=min(max_end, exception_end)
    )


def break_glass_renewal(
    identity: WorkloadIdentity,
    requested_ttl: timedelta | None,
    policy: PolicyView,
    facts: CalendarFacts,
    *,
    now: datetime,
    secret: str,
    issued_at: datetime,
    ref_problem: str | None,
    source_address: str | None,
) -> Decision:
    """Renewing a break-glass lease: as claiming it (the calendar excused), its life counted from
    ``issued_at`` and never past the exception's ``max_ttl``."""
    reasons = standing_reasons(
        BREAK_GLASS,
        identity,
        policy,
        facts,
        secret=secret,
        ref_problem=ref_problem,
        source_address=source_address,
    )
    rule = policy.break_glass
    if rule is not None:
        grant = break_glass_grant(policy, rule, now=now, requested_ttl=requested_ttl, issued_at=issued_at)
        if grant.latest_end is not None and grant.latest_end <= now:
            reasons.append(
                Reason(MAX_TTL_REACHED, "the break-glass lease has lived its max_ttl", policy.name)
            )
        elif not reasons:
            return Decision.granted(grant)
    return Decision.denied(reasons)
