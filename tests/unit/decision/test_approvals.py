"""The core's approval rules, table-driven: what a request becomes, who may approve, what a claim obtains."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.decision import reasons as codes
from app.decision.approvals import (
    Pending,
    approver_refusal,
    claim_decision,
    gate,
    is_approved,
    standing_reasons,
)
from app.decision.identity import WorkloadIdentity
from app.decision.intervals import Interval
from app.decision.policy import CalendarFacts, Decision, FreezeFact, PolicyView, decide
from app.decision.policy_view import ApprovalRule
from tests.support.policy_views import policy_view

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
OPEN = CalendarFacts(open_interval=Interval(NOW - 60 * MIN, NOW + 20 * MIN))
CLOSED = CalendarFacts(open_interval=None, next_opening=NOW + timedelta(days=1))
FROZEN = CalendarFacts(open_interval=None, active_freeze=FreezeFact("incident", "outage"))
RULE = ApprovalRule(required=2, approvers=("alice", "bob"), timeout=30 * MIN)
GLASS = ApprovalRule(required=2, approvers=("alice", "bob"), timeout=15 * MIN, max_ttl=30 * MIN)
ME = WorkloadIdentity(
    issuer="github",
    repository="acme/payments",
    ref="refs/heads/main",
    ref_type="branch",
    branch="main",
    event="push",
    actor="octocat",
    triggering_actor="hubot",
)


def _decide(policy: PolicyView, facts: CalendarFacts, identity: WorkloadIdentity = ME) -> Decision:
    return decide(identity, None, [(policy, facts, 0)], now=NOW, secret_known=True, ref_problem=None)


@pytest.mark.parametrize(
    ("approval", "glass", "facts", "justification", "expected"),
    [
        (RULE, None, OPEN, None, Pending("approval", "deploy-prod", RULE)),
        (None, None, OPEN, None, "granted"),
        (None, GLASS, OPEN, "prod down", "granted"),  # nothing to excuse: an ordinary grant
        (None, GLASS, CLOSED, "prod down", Pending("break_glass", "deploy-prod", GLASS)),
        (None, GLASS, FROZEN, "prod down", Pending("break_glass", "deploy-prod", GLASS)),
        (None, GLASS, CLOSED, None, "denied"),  # no justification, no exception
        (None, None, CLOSED, "prod down", "denied"),  # the policy allows none
        (RULE, None, CLOSED, "prod down", "denied"),
    ],
)
def test_what_a_request_becomes(
    approval: ApprovalRule | None,
    glass: ApprovalRule | None,
    facts: CalendarFacts,
    justification: str | None,
    expected: object,
) -> None:
    policy = policy_view(approval=approval, break_glass=glass)
    outcome = gate(_decide(policy, facts), [policy], justification=justification)
    if isinstance(expected, Pending):
        assert outcome == expected
    else:
        assert not isinstance(outcome, Pending) and outcome.allowed == (expected == "granted")


@pytest.mark.parametrize(
    "identity",
    [
        WorkloadIdentity(**{**ME.to_dict(), "ref": "refs/heads/feature", "branch": "feature"}),
        WorkloadIdentity(**{**ME.to_dict(), "event": "pull_request"}),
        WorkloadIdentity(**{**ME.to_dict(), "repository": "evil/fork"}),
    ],
)
def test_break_glass_never_excuses_another_refusal(identity: WorkloadIdentity) -> None:
    policy = policy_view(break_glass=GLASS)
    outcome = gate(_decide(policy, CLOSED, identity), [policy], justification="prod down")
    assert not isinstance(outcome, Pending) and not outcome.allowed


@pytest.mark.parametrize(
    ("name", "role", "ci_login", "code"),
    [
        ("alice", "approver", "octocat", codes.SELF_APPROVAL),  # the actor
        ("alice", "admin", "hubot", codes.SELF_APPROVAL),  # who re-ran it
        ("dave", "approver", "dave-gh", codes.NOT_AN_APPROVER),
        ("alice", "auditor", "alice-gh", codes.NOT_AN_APPROVER),
        ("alice", "approver", "alice-gh", None),
        ("alice", "approver", None, None),
    ],
)
def test_who_may_approve(name: str, role: str, ci_login: str | None, code: str | None) -> None:
    refusal = approver_refusal(RULE, name=name, role=role, ci_login=ci_login, requester=ME)
    assert (refusal.code if refusal else None) == code


def test_any_admin_or_approver_when_the_rule_names_none() -> None:
    anyone = ApprovalRule(required=1, approvers=(), timeout=MIN)
    assert approver_refusal(anyone, name="zed", role="admin", ci_login=None, requester=ME) is None
    assert approver_refusal(anyone, name="zed", role="auditor", ci_login=None, requester=ME) is not None


def test_approved_counts_distinct_approvers() -> None:
    assert not is_approved(["alice"], 2)
    assert not is_approved(["alice", "alice"], 2)
    assert is_approved(["alice", "bob"], 2)


@pytest.mark.parametrize(
    ("requested", "bounded_by", "minutes"),
    [(None, "requested", 15), (timedelta(hours=2), "break_glass", 30)],
)
def test_a_break_glass_claim_ignores_the_calendar_and_is_capped(
    requested: timedelta | None, bounded_by: str, minutes: int
) -> None:
    policy = policy_view(break_glass=GLASS, max_ttl=timedelta(hours=4))
    decision = claim_decision(
        "break_glass",
        ME,
        requested,
        policy,
        FROZEN,
        now=NOW,
        secret="prod-db",
        active_count=0,
        ref_problem=None,
        source_address=None,
    )
    assert decision.grant is not None
    assert decision.grant.bounded_by == bounded_by and decision.grant.expires_at == NOW + minutes * MIN


def test_an_approval_claim_judges_the_calendar_again() -> None:
    policy = policy_view(approval=RULE)
    decision = claim_decision(
        "approval",
        ME,
        None,
        policy,
        CLOSED,
        now=NOW,
        secret="prod-db",
        active_count=0,
        ref_problem=None,
        source_address=None,
    )
    assert [r.code for r in decision.reasons] == [codes.OUTSIDE_WINDOW]


def test_a_request_stands_until_its_grant_is_taken_away() -> None:
    policy = policy_view(break_glass=GLASS)

    def standing(view: PolicyView | None) -> list[str]:
        return [
            r.code
            for r in standing_reasons(
                "break_glass",
                ME,
                view,
                CLOSED,
                secret="prod-db",
                ref_problem=None,
                source_address=None,
            )
        ]

    assert standing(policy) == []
    assert standing(policy_view(break_glass=None)) == [codes.NO_POLICY]
    assert standing(policy_view(break_glass=GLASS, branches=("release/*",))) == [codes.BRANCH_NOT_ALLOWED]
    assert standing(None) == [codes.NO_POLICY]
