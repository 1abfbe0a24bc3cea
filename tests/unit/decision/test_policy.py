"""Policy evaluation (app/decision/policy.py): every rule, every reason, the grant and its bound."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.decision import reasons as codes
from app.decision.identity import WorkloadIdentity
from app.decision.intervals import Interval
from app.decision.policy import (
    CalendarFacts,
    Decision,
    FreezeFact,
    Grant,
    PolicyView,
    check_policy,
    decide,
    renewal_decision,
)
from app.decision.reasons import Reason
from app.decision.ttl import bound_expiry

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
OPEN = CalendarFacts(open_interval=Interval(NOW - 2 * 60 * MIN, NOW + 6 * 60 * MIN))
CLOSED = CalendarFacts(open_interval=None, next_opening=datetime(2026, 12, 2, 8, 0, tzinfo=UTC))

GOOD = WorkloadIdentity(
    issuer="github",
    repository="acme/payments",
    ref="refs/heads/main",
    ref_type="branch",
    branch="main",
    ref_protected=True,
    environment="production",
    runner_environment="github-hosted",
    runner_id="17",
    pipeline_id="1234",
    event="push",
)


def policy(**changes: Any) -> PolicyView:
    base = PolicyView(
        name="deploy-prod",
        issuer="github",
        secrets=("prod-db",),
        repositories=("acme/payments",),
        branches=("main", "release/*"),
        tags=("v*",),
        require_protected_ref=True,
        environments=("production",),
        runner_environments=("github-hosted",),
        runner_ids=(),
        events=None,
        windows=("weekday-deploys",),
        default_ttl=15 * MIN,
        max_ttl=60 * MIN,
        max_active=5,
    )
    return replace(base, **changes)


def identity(**changes: Any) -> WorkloadIdentity:
    return replace(GOOD, **changes)


TAG = {"ref": "refs/tags/v1.2.0", "ref_type": "tag", "branch": None, "tag": "v1.2.0"}


@dataclass(frozen=True)
class Case:
    id: str
    codes: tuple[str, ...]  # expected, in order; empty: passes
    fragments: tuple[str, ...] = ()  # each appears in some message
    who: dict[str, Any] = field(default_factory=dict)  # identity changes
    rules: dict[str, Any] = field(default_factory=dict)  # policy changes
    facts: CalendarFacts = OPEN
    active: int = 0
    ref_problem: str | None = None


RULE_CASES = [
    Case("all pass", ()),
    # issuer
    Case("issuer differs", (codes.ISSUER_NOT_ALLOWED,), ("'gitlab'", "'github'"), who={"issuer": "gitlab"}),
    # ref validity
    Case(
        "invalid ref",
        (codes.INVALID_REF,),
        ("contains '..'",),
        who={"ref": "refs/heads/a..b", "branch": "a..b"},
        ref_problem="contains '..'",
    ),
    # repository
    Case("repository matches a pattern", (), rules={"repositories": ("acme/*",)}),
    Case(
        "repository does not match",
        (codes.REPOSITORY_NOT_ALLOWED,),
        ("repository 'evil/payments' does not match any of: acme/payments",),
        who={"repository": "evil/payments"},
    ),
    Case(
        "repository pattern is one segment",
        (codes.REPOSITORY_NOT_ALLOWED,),
        who={"repository": "acme/payments/x"},
        rules={"repositories": ("acme/*",)},
    ),
    Case(
        "repository unknown",
        (codes.REPOSITORY_NOT_ALLOWED,),
        ("states no repository",),
        who={"repository": None},
    ),
    Case(
        "no repositories allow nothing",
        (codes.REPOSITORY_NOT_ALLOWED,),
        ("allows no repositories",),
        rules={"repositories": ()},
    ),
    # branch
    Case("branch matches a pattern", (), who={"ref": "refs/heads/release/1.0", "branch": "release/1.0"}),
    Case(
        "branch does not match",
        (codes.BRANCH_NOT_ALLOWED,),
        ("branch 'feature/x' does not match any of: main, release/*",),
        who={"ref": "refs/heads/feature/x", "branch": "feature/x"},
    ),
    Case(
        "branch pattern stays in one segment",
        (codes.BRANCH_NOT_ALLOWED,),
        who={"ref": "refs/heads/release/1/x", "branch": "release/1/x"},
    ),
    Case(
        "branch is case-sensitive",
        (codes.BRANCH_NOT_ALLOWED,),
        who={"ref": "refs/heads/Main", "branch": "Main"},
    ),
    Case(
        "no branches allow no branch",
        (codes.BRANCH_NOT_ALLOWED,),
        ("allows no branches",),
        rules={"branches": ()},
    ),
    Case(
        "branches do not allow a tag",
        (codes.TAG_NOT_ALLOWED,),
        ("allows no tags",),
        who=TAG,
        rules={"tags": ()},
    ),
    # tag
    Case("tag matches", (), who=TAG),
    Case(
        "tag does not match",
        (codes.TAG_NOT_ALLOWED,),
        ("tag 'release-1' does not match any of: v*",),
        who={**TAG, "ref": "refs/tags/release-1", "tag": "release-1"},
    ),
    Case(
        "tags do not allow a branch named like one",
        (codes.BRANCH_NOT_ALLOWED,),
        who={"ref": "refs/heads/v1.2.0", "branch": "v1.2.0"},
        rules={"branches": ()},
    ),
    # neither branch nor tag
    Case(
        "pull request merge ref",
        (codes.BRANCH_NOT_ALLOWED,),
        ("ref 'refs/pull/7/merge' is neither a branch nor a tag",),
        who={"ref": "refs/pull/7/merge", "ref_type": None, "branch": None},
    ),
    Case(
        "no ref at all",
        (codes.BRANCH_NOT_ALLOWED,),
        ("states neither a branch nor a tag",),
        who={"ref": None, "ref_type": None, "branch": None},
    ),
    Case(
        "branch ref type without a branch name",
        (codes.BRANCH_NOT_ALLOWED,),
        ("neither a branch nor a tag",),
        who={"branch": None},
    ),
    # protected ref
    Case(
        "protected ref required and false",
        (codes.REF_NOT_PROTECTED,),
        ("not protected",),
        who={"ref_protected": False},
    ),
    Case(
        "protected ref required and unknown",
        (codes.REF_NOT_PROTECTED,),
        ("the token does not state whether the ref is protected",),
        who={"ref_protected": None},
    ),
    Case(
        "protected ref not required",
        (),
        who={"ref_protected": None},
        rules={"require_protected_ref": False},
    ),
    # environment
    Case(
        "environment not listed",
        (codes.ENVIRONMENT_NOT_ALLOWED,),
        ("environment 'staging' is not one of: production",),
        who={"environment": "staging"},
    ),
    Case(
        "environment is an exact match",
        (codes.ENVIRONMENT_NOT_ALLOWED,),
        who={"environment": "production-2"},
        rules={"environments": ("production",)},
    ),
    Case(
        "environment unknown",
        (codes.ENVIRONMENT_NOT_ALLOWED,),
        ("names no environment",),
        who={"environment": None},
    ),
    Case("no environments: no restriction", (), who={"environment": None}, rules={"environments": ()}),
    # runner
    Case(
        "runner environment not listed",
        (codes.RUNNER_NOT_ALLOWED,),
        ("runner environment 'self-hosted' is not one of: github-hosted",),
        who={"runner_environment": "self-hosted"},
    ),
    Case(
        "runner environment unknown",
        (codes.RUNNER_NOT_ALLOWED,),
        ("no runner environment",),
        who={"runner_environment": None},
    ),
    Case("runner id listed", (), rules={"runner_ids": ("16", "17")}),
    Case(
        "runner id not listed",
        (codes.RUNNER_NOT_ALLOWED,),
        ("runner id '17' is not one of: 16",),
        rules={"runner_ids": ("16",)},
    ),
    Case(
        "runner id unknown",
        (codes.RUNNER_NOT_ALLOWED,),
        ("no runner id",),
        who={"runner_id": None},
        rules={"runner_ids": ("16",)},
    ),
    Case(
        "runner environment and id both fail",
        (codes.RUNNER_NOT_ALLOWED, codes.RUNNER_NOT_ALLOWED),
        who={"runner_environment": "self-hosted"},
        rules={"runner_ids": ("16",)},
    ),
    Case(
        "no runner lists: no restriction",
        (),
        who={"runner_environment": None, "runner_id": None},
        rules={"runner_environments": ()},
    ),
    # repository ids
    Case("repository id listed", (), who={"repository_id": "42"}, rules={"repository_ids": ("41", "42")}),
    Case(
        "repository id not listed: a name taken over",
        (codes.REPOSITORY_NOT_ALLOWED,),
        ("repository id '99' is not one of: 42",),
        who={"repository_id": "99"},
        rules={"repository_ids": ("42",)},
    ),
    Case(
        "repository id unknown",
        (codes.REPOSITORY_NOT_ALLOWED,),
        ("states no repository id",),
        rules={"repository_ids": ("42",)},
    ),
    Case("no repository ids: no restriction", (), who={"repository_id": "99"}),
    # protected environment
    Case(
        "protected environment required and true",
        (),
        who={"environment_protected": True},
        rules={"require_protected_environment": True},
    ),
    Case(
        "protected environment required and false",
        (codes.ENVIRONMENT_NOT_PROTECTED,),
        ("environment 'production' is not protected",),
        who={"environment_protected": False},
        rules={"require_protected_environment": True},
    ),
    Case(
        "protected environment required and unknown",
        (codes.ENVIRONMENT_NOT_PROTECTED,),
        ("does not state whether its environment is protected",),
        rules={"require_protected_environment": True},
    ),
    # events
    Case("default events allow push", ()),
    Case("default events allow workflow_dispatch", (), who={"event": "workflow_dispatch"}),
    Case(
        "default events deny an unknown event",
        (codes.EVENT_NOT_ALLOWED,),
        ("does not state its event",),
        who={"event": None},
    ),
    Case("listed event", (), rules={"events": ("push", "workflow_dispatch")}),
    Case(
        "unlisted event",
        (codes.EVENT_NOT_ALLOWED,),
        ("event 'schedule' is not one of: push, workflow_dispatch",),
        who={"event": "schedule"},
        rules={"events": ("push", "workflow_dispatch")},
    ),
    Case(
        "unknown event with a list",
        (codes.EVENT_NOT_ALLOWED,),
        who={"event": None},
        rules={"events": ("push",)},
    ),
    Case(
        "empty events list allows nothing",
        (codes.EVENT_NOT_ALLOWED,),
        ("allows no events",),
        rules={"events": ()},
    ),
    Case("pull_request opted in", (), who={"event": "pull_request"}, rules={"events": ("pull_request",)}),
    # calendar
    Case(
        "outside window",
        (codes.OUTSIDE_WINDOW,),
        ("weekday-deploys", "next opening is at 2026-12-02T08:00:00Z"),
        facts=CLOSED,
    ),
    Case(
        "outside window with no opening within a year",
        (codes.OUTSIDE_WINDOW,),
        ("none opens within a year",),
        facts=CalendarFacts(open_interval=None),
    ),
    Case(
        "freeze active",
        (codes.FREEZE_ACTIVE,),
        ("freeze 'year-end' is in effect: year-end change freeze", "next opening is at 2027-01-04T08:00:00Z"),
        facts=CalendarFacts(
            open_interval=None,
            active_freeze=FreezeFact("year-end", "year-end change freeze"),
            next_opening=datetime(2027, 1, 4, 8, 0, tzinfo=UTC),
        ),
    ),
    # max_active
    Case("below max_active", (), active=4),
    Case(
        "max_active reached",
        (codes.MAX_ACTIVE_REACHED,),
        ("5 leases are active", "max_active is 5"),
        active=5,
    ),
    Case("max_active zero", (codes.MAX_ACTIVE_REACHED,), rules={"max_active": 0}),
    Case("no max_active", (), active=10_000, rules={"max_active": None}),
]


@pytest.mark.parametrize("case", RULE_CASES, ids=lambda case: case.id)
def test_rule(case: Case) -> None:
    view = policy(**case.rules)
    reasons = check_policy(
        identity(**case.who), view, facts=case.facts, active_count=case.active, ref_problem=case.ref_problem
    )
    assert tuple(r.code for r in reasons) == case.codes
    assert all(r.policy == view.name for r in reasons)
    messages = " | ".join(r.message for r in reasons)
    for fragment in case.fragments:
        assert fragment in messages


def test_unknown_protection_denies_with_a_clear_message() -> None:
    reasons = check_policy(
        identity(ref_protected=None), policy(), facts=OPEN, active_count=0, ref_problem=None
    )
    assert [r.code for r in reasons] == [codes.REF_NOT_PROTECTED]
    assert "the token does not state whether the ref is protected" in reasons[0].message


def test_every_failing_rule_is_reported_together() -> None:
    who = identity(
        issuer="gitlab",
        repository="evil/payments",
        ref="refs/heads/feature/x",
        branch="feature/x",
        ref_protected=None,
        environment="staging",
        runner_environment="self-hosted",
        event="pull_request_target",
    )
    reasons = check_policy(who, policy(runner_ids=("16",)), facts=CLOSED, active_count=5, ref_problem=None)
    assert [r.code for r in reasons] == [
        codes.ISSUER_NOT_ALLOWED,
        codes.REPOSITORY_NOT_ALLOWED,
        codes.BRANCH_NOT_ALLOWED,
        codes.REF_NOT_PROTECTED,
        codes.ENVIRONMENT_NOT_ALLOWED,
        codes.RUNNER_NOT_ALLOWED,
        codes.RUNNER_NOT_ALLOWED,
        codes.EVENT_NOT_ALLOWED,
        codes.OUTSIDE_WINDOW,
        codes.MAX_ACTIVE_REACHED,
    ]


def test_a_freeze_is_reported_instead_of_outside_window() -> None:
    facts = CalendarFacts(open_interval=None, active_freeze=FreezeFact("year-end", ""))
    reasons = check_policy(GOOD, policy(), facts=facts, active_count=0, ref_problem=None)
    assert [r.code for r in reasons] == [codes.FREEZE_ACTIVE]
    assert reasons[0].message == "freeze 'year-end' is in effect"


def test_an_invalid_ref_is_neither_matched_nor_shown() -> None:
    who = identity(ref="refs/heads/x\n2026 GRANTED", branch="x\n2026 GRANTED")
    reasons = check_policy(
        who, policy(), facts=OPEN, active_count=0, ref_problem="contains a control character"
    )
    assert [r.code for r in reasons] == [codes.INVALID_REF]
    assert "GRANTED" not in reasons[0].message


def test_identity_values_are_escaped_and_shortened_in_messages() -> None:
    who = identity(environment="prod\r\nINFO lease granted", repository="acme/" + "x" * 500)
    reasons = check_policy(who, policy(), facts=OPEN, active_count=0, ref_problem=None)
    messages = [r.message for r in reasons]
    assert all("\n" not in m and "\r" not in m for m in messages)
    assert any("'prod\\r\\nINFO lease granted'" in m for m in messages)
    assert all(len(m) < 300 for m in messages)


def test_rfc3339_in_messages_is_utc_with_z() -> None:
    berlin_morning = datetime.fromisoformat("2026-12-02T09:00:00+01:00")
    facts = CalendarFacts(open_interval=None, next_opening=berlin_morning)
    reasons = check_policy(GOOD, policy(), facts=facts, active_count=0, ref_problem=None)
    assert "2026-12-02T08:00:00Z" in reasons[0].message


# --- decide ----------------------------------------------------------------------------------------------


def test_unknown_secret() -> None:
    decision = decide(GOOD, None, [(policy(), OPEN, 0)], now=NOW, secret_known=False, ref_problem=None)
    assert not decision.allowed
    assert decision.grant is None
    assert [r.code for r in decision.reasons] == [codes.UNKNOWN_SECRET]


def test_no_policy() -> None:
    decision = decide(GOOD, None, [], now=NOW, secret_known=True, ref_problem=None, secret="prod-db")
    assert [r.code for r in decision.reasons] == [codes.NO_POLICY]
    assert "'prod-db'" in decision.reasons[0].message


def test_candidates_that_do_not_name_the_secret_are_left_out() -> None:
    decision = decide(
        GOOD, None, [(policy(), OPEN, 0)], now=NOW, secret_known=True, ref_problem=None, secret="x"
    )
    assert [r.code for r in decision.reasons] == [codes.NO_POLICY]


def test_grant_with_default_ttl() -> None:
    decision = decide(GOOD, None, [(policy(), OPEN, 0)], now=NOW, secret_known=True, ref_problem=None)
    assert decision == Decision(
        allowed=True,
        grant=Grant(policy="deploy-prod", expires_at=NOW + 15 * MIN, bounded_by="requested", ttl=15 * MIN),
        reasons=(),
    )


def test_the_first_granting_policy_by_name_wins() -> None:
    candidates = [
        (policy(name="zeta"), OPEN, 0),
        (policy(name="alpha", branches=("release/*",)), OPEN, 0),  # denies
        (policy(name="beta", default_ttl=5 * MIN), OPEN, 0),
        (policy(name="gamma"), OPEN, 0),
    ]
    decision = decide(GOOD, None, candidates, now=NOW, secret_known=True, ref_problem=None)
    assert decision.grant is not None
    assert decision.grant.policy == "beta"
    assert decision.grant.ttl == 5 * MIN


def test_a_denial_carries_the_reasons_of_every_policy() -> None:
    candidates = [
        (policy(name="zeta", environments=("staging",)), OPEN, 0),
        (policy(name="alpha", branches=("release/*",)), CLOSED, 0),
        (policy(name="beta", max_active=1), OPEN, 1),
    ]
    decision = decide(GOOD, None, candidates, now=NOW, secret_known=True, ref_problem=None)
    assert not decision.allowed
    assert [(r.policy, r.code) for r in decision.reasons] == [
        ("alpha", codes.BRANCH_NOT_ALLOWED),
        ("alpha", codes.OUTSIDE_WINDOW),
        ("beta", codes.MAX_ACTIVE_REACHED),
        ("zeta", codes.ENVIRONMENT_NOT_ALLOWED),
    ]


def test_ref_problem_applies_to_every_policy() -> None:
    candidates = [(policy(name="a"), OPEN, 0), (policy(name="b"), OPEN, 0)]
    decision = decide(GOOD, None, candidates, now=NOW, secret_known=True, ref_problem="contains '//'")
    assert [(r.policy, r.code) for r in decision.reasons] == [
        ("a", codes.INVALID_REF),
        ("b", codes.INVALID_REF),
    ]


ALL_LEASE_CODES = {
    codes.UNKNOWN_SECRET,
    codes.NO_POLICY,
    codes.ISSUER_NOT_ALLOWED,
    codes.REPOSITORY_NOT_ALLOWED,
    codes.BRANCH_NOT_ALLOWED,
    codes.TAG_NOT_ALLOWED,
    codes.REF_NOT_PROTECTED,
    codes.ENVIRONMENT_NOT_ALLOWED,
    codes.ENVIRONMENT_NOT_PROTECTED,
    codes.RUNNER_NOT_ALLOWED,
    codes.EVENT_NOT_ALLOWED,
    codes.OUTSIDE_WINDOW,
    codes.FREEZE_ACTIVE,
    codes.MAX_ACTIVE_REACHED,
    codes.INVALID_REF,
}


def test_every_reason_code_is_produced() -> None:
    produced: set[str] = set()
    for case in RULE_CASES:
        decision = decide(
            identity(**case.who),
            None,
            [(policy(**case.rules), case.facts, case.active)],
            now=NOW,
            secret_known=True,
            ref_problem=case.ref_problem,
        )
        assert decision.allowed is not bool(case.codes)
        produced.update(r.code for r in decision.reasons)
    produced.update(
        r.code for r in decide(GOOD, None, [], now=NOW, secret_known=False, ref_problem=None).reasons
    )
    produced.update(
        r.code for r in decide(GOOD, None, [], now=NOW, secret_known=True, ref_problem=None).reasons
    )
    assert produced == ALL_LEASE_CODES


# --- the bound -------------------------------------------------------------------------------------------

T = NOW + 30 * MIN
LATER = NOW + 90 * MIN


@pytest.mark.parametrize(
    ("requested", "max_end", "interval_end", "freeze", "expected"),
    [
        (30 * MIN, LATER, LATER, LATER, "requested"),
        (90 * MIN, T, LATER, LATER, "max_ttl"),
        (90 * MIN, LATER, T, LATER, "window"),
        (90 * MIN, LATER, LATER, T, "freeze"),
        (90 * MIN, LATER, None, None, "requested"),  # tie of requested and max_ttl
        (120 * MIN, LATER, None, None, "max_ttl"),
        # ties: requested > max_ttl > freeze > window
        (30 * MIN, T, T, T, "requested"),
        (90 * MIN, T, T, T, "max_ttl"),
        (90 * MIN, LATER, T, T, "freeze"),
        (30 * MIN, LATER, None, T, "requested"),
        (90 * MIN, T, None, T, "max_ttl"),
    ],
)
def test_bound_and_its_tie_order(
    requested: timedelta,
    max_end: datetime,
    interval_end: datetime | None,
    freeze: datetime | None,
    expected: str,
) -> None:
    expires_at, bounded_by = bound_expiry(NOW, requested, max_end, Interval(NOW - MIN, interval_end), freeze)
    assert bounded_by == expected
    assert expires_at == min(x for x in (NOW + requested, max_end, interval_end, freeze) if x is not None)


_minutes = st.integers(min_value=1, max_value=600).map(lambda m: m * MIN)


@given(_minutes, _minutes, st.none() | _minutes, st.none() | _minutes)
def test_a_grant_never_outlives_any_bound(
    requested: timedelta, max_ttl: timedelta, interval_left: timedelta | None, freeze_in: timedelta | None
) -> None:
    interval_end = None if interval_left is None else NOW + interval_left
    facts = CalendarFacts(
        open_interval=Interval(NOW - MIN, interval_end),
        next_freeze_start=None if freeze_in is None else NOW + freeze_in,
    )
    decision = decide(
        GOOD, requested, [(policy(max_ttl=max_ttl), facts, 0)], now=NOW, secret_known=True, ref_problem=None
    )
    assert decision.grant is not None
    grant = decision.grant
    assert NOW < grant.expires_at <= NOW + min(requested, max_ttl)
    assert interval_end is None or grant.expires_at <= interval_end
    assert facts.next_freeze_start is None or grant.expires_at <= facts.next_freeze_start
    assert grant.ttl == grant.expires_at - NOW


def test_requested_ttl_above_max_ttl_is_capped() -> None:
    decision = decide(GOOD, 3 * 60 * MIN, [(policy(), OPEN, 0)], now=NOW, secret_known=True, ref_problem=None)
    assert decision.grant == Grant("deploy-prod", NOW + 60 * MIN, "max_ttl", 60 * MIN)


def test_grant_bounded_by_window_and_by_freeze() -> None:
    closing = CalendarFacts(open_interval=Interval(NOW - MIN, NOW + 10 * MIN))
    freezing = CalendarFacts(open_interval=Interval(NOW - MIN, None), next_freeze_start=NOW + 7 * MIN)
    by_window = decide(GOOD, None, [(policy(), closing, 0)], now=NOW, secret_known=True, ref_problem=None)
    by_freeze = decide(GOOD, None, [(policy(), freezing, 0)], now=NOW, secret_known=True, ref_problem=None)
    assert by_window.grant == Grant("deploy-prod", NOW + 10 * MIN, "window", 10 * MIN)
    assert by_freeze.grant == Grant("deploy-prod", NOW + 7 * MIN, "freeze", 7 * MIN)


# --- renewal ---------------------------------------------------------------------------------------------


def renew(**kwargs: Any) -> Decision:
    args: dict[str, Any] = {
        "identity": GOOD,
        "requested_ttl": None,
        "policy": policy(),
        "facts": OPEN,
        "now": NOW,
        "secret": "prod-db",
        "issued_at": NOW - 10 * MIN,
        "active_count": 1,
        "ref_problem": None,
    }
    args.update(kwargs)
    return renewal_decision(**args)


def test_renewal_counts_max_ttl_from_issued_at() -> None:
    decision = renew(issued_at=NOW - 50 * MIN, requested_ttl=15 * MIN)
    assert decision.grant == Grant("deploy-prod", NOW + 10 * MIN, "max_ttl", 10 * MIN)


def test_renewal_within_max_ttl_is_bounded_by_the_request() -> None:
    decision = renew(issued_at=NOW - 10 * MIN, requested_ttl=15 * MIN)
    assert decision.grant == Grant("deploy-prod", NOW + 15 * MIN, "requested", 15 * MIN)


def test_renewal_after_max_ttl_is_denied() -> None:
    decision = renew(issued_at=NOW - 60 * MIN)
    assert [r.code for r in decision.reasons] == [codes.MAX_TTL_REACHED]
    assert "1h" in decision.reasons[0].message
    assert "2026-12-01T09:00:00Z" in decision.reasons[0].message


def test_renewal_does_not_count_the_lease_itself_against_max_active() -> None:
    assert renew(policy=policy(max_active=1), active_count=1).allowed
    denied = renew(policy=policy(max_active=1), active_count=2)
    assert [r.code for r in denied.reasons] == [codes.MAX_ACTIVE_REACHED]


def test_renewal_applies_every_rule_again() -> None:
    decision = renew(identity=identity(environment="staging"), facts=CLOSED)
    assert [r.code for r in decision.reasons] == [codes.ENVIRONMENT_NOT_ALLOWED, codes.OUTSIDE_WINDOW]


def test_renewal_under_a_policy_that_no_longer_names_the_secret() -> None:
    decision = renew(policy=policy(secrets=("other",)))
    assert [r.code for r in decision.reasons] == [codes.NO_POLICY]


# --- contracts -------------------------------------------------------------------------------------------


def test_decision_is_a_grant_or_a_denial_with_reasons() -> None:
    grant = Grant("p", NOW + MIN, "requested", MIN)
    reason = Reason(codes.NO_POLICY, "none")
    with pytest.raises(ValueError, match="Decision"):
        Decision(allowed=True, grant=None, reasons=())
    with pytest.raises(ValueError, match="Decision"):
        Decision(allowed=True, grant=grant, reasons=(reason,))
    with pytest.raises(ValueError, match="Decision"):
        Decision(allowed=False, grant=None, reasons=())
    with pytest.raises(ValueError, match="Decision"):
        Decision(allowed=False, grant=grant, reasons=(reason,))


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        decide(GOOD, None, [], now=NOW.replace(tzinfo=None), secret_known=True, ref_problem=None)


@pytest.mark.parametrize("ttl", [timedelta(0), -MIN])
def test_non_positive_requested_ttl_is_refused(ttl: timedelta) -> None:
    with pytest.raises(ValueError, match="positive"):
        decide(GOOD, ttl, [(policy(), OPEN, 0)], now=NOW, secret_known=True, ref_problem=None)


def test_facts_that_do_not_contain_now_are_a_caller_error() -> None:
    stale = CalendarFacts(open_interval=Interval(NOW - 60 * MIN, NOW))
    with pytest.raises(ValueError, match="open interval"):
        decide(GOOD, None, [(policy(), stale, 0)], now=NOW, secret_known=True, ref_problem=None)
