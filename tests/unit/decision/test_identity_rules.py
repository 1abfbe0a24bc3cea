"""The identity rules (app/decision/identity_rules.py): the trusted-events default, repository ids and
protected environments (issue 18, finding 8)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.decision import reasons as codes
from app.decision.identity import WorkloadIdentity
from app.decision.identity_rules import (
    DEFAULT_EVENTS,
    GITHUB_DEFAULT_EVENTS,
    GITLAB_DEFAULT_EVENTS,
    admits_source,
    identity_reasons,
)
from app.decision.intervals import Interval
from app.decision.policy import CalendarFacts, PolicyView, decide
from tests.support.policy_views import policy_view

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
OPEN = CalendarFacts(open_interval=Interval(NOW - timedelta(hours=1), NOW + timedelta(hours=8)))

WHO = WorkloadIdentity(
    issuer="github",
    repository="acme/payments",
    repository_id="123456",
    ref="refs/heads/main",
    ref_type="branch",
    branch="main",
    event="push",
)
POLICY = policy_view()


def who(**changes: Any) -> WorkloadIdentity:
    return replace(WHO, **changes)


def rules(**changes: Any) -> PolicyView:
    return replace(POLICY, **changes)


def codes_of(identity: WorkloadIdentity, policy: PolicyView) -> list[str]:
    return [r.code for r in identity_reasons(identity, policy, ref_problem=None)]


# --- events: an allowlist by default -----------------------------------------------------------------------

# The attacks of the review: events that run code from outside the repository's trusted branches.
UNTRUSTED = [
    "workflow_run",
    "issue_comment",
    "pull_request_review",
    "pull_request_review_comment",
    "pull_request",
    "pull_request_target",
    "repository_dispatch",
    "merge_request_event",
    "external_pull_request_event",
    "chat",
    "webide",
]


@pytest.mark.parametrize("event", UNTRUSTED)
def test_a_policy_without_events_refuses_untrusted_events(event: str) -> None:
    reasons = identity_reasons(who(event=event), POLICY, ref_problem=None)
    assert [r.code for r in reasons] == [codes.EVENT_NOT_ALLOWED]
    assert f"'{event}'" in reasons[0].message and "list it in the policy's events" in reasons[0].message


@pytest.mark.parametrize("event", sorted(DEFAULT_EVENTS))
def test_a_policy_without_events_allows_the_trusted_ones(event: str) -> None:
    assert codes_of(who(event=event), POLICY) == []


@pytest.mark.parametrize("event", ["workflow_run", "issue_comment", "external_pull_request_event"])
def test_a_listed_untrusted_event_passes(event: str) -> None:
    assert codes_of(who(event=event), rules(events=(event,))) == []


def test_an_unknown_event_is_refused_by_the_default() -> None:
    reasons = identity_reasons(who(event=None), POLICY, ref_problem=None)
    assert [r.code for r in reasons] == [codes.EVENT_NOT_ALLOWED]
    assert "does not state its event" in reasons[0].message


def test_the_default_lists_are_api_md_s() -> None:
    github = ["deployment", "merge_group", "push", "release", "schedule", "workflow_dispatch"]
    gitlab = ["api", "parent_pipeline", "pipeline", "push", "schedule", "trigger", "web"]
    assert sorted(GITHUB_DEFAULT_EVENTS) == github
    assert sorted(GITLAB_DEFAULT_EVENTS) == gitlab


def test_one_union_decides_as_each_flavors_own_list() -> None:
    """The union is used for every issuer; it is exact because no name the one platform trusts is an
    event the other platform emits (GitHub's events and GitLab's pipeline sources as documented)."""
    github_events = {
        "branch_protection_rule", "check_run", "check_suite", "create", "delete", "deployment",
        "deployment_status", "discussion", "discussion_comment", "fork", "gollum", "issue_comment", "issues",
        "label", "merge_group", "milestone", "page_build", "public", "pull_request", "pull_request_review",
        "pull_request_review_comment", "pull_request_target", "push", "registry_package", "release",
        "repository_dispatch", "schedule", "status", "watch", "workflow_call", "workflow_dispatch",
        "workflow_run",
    }  # fmt: skip
    gitlab_sources = {
        "api", "chat", "external", "external_pull_request_event", "merge_request_event",
        "ondemand_dast_scan", "ondemand_dast_validation", "parent_pipeline", "pipeline", "push", "schedule",
        "security_orchestration_policy", "trigger", "web", "webide",
    }  # fmt: skip
    assert DEFAULT_EVENTS & github_events == GITHUB_DEFAULT_EVENTS
    assert DEFAULT_EVENTS & gitlab_sources == GITLAB_DEFAULT_EVENTS


def test_a_denial_by_the_default_reaches_decide() -> None:
    decision = decide(
        who(event="workflow_run"), None, [(POLICY, OPEN, 0)], now=NOW, secret_known=True, ref_problem=None
    )
    assert [r.code for r in decision.reasons] == [codes.EVENT_NOT_ALLOWED]


# --- repository ids ----------------------------------------------------------------------------------------


def test_repository_ids_must_match_as_well_as_the_name() -> None:
    pinned = rules(repository_ids=("123456",))
    assert codes_of(WHO, pinned) == []
    # The name was taken over after a rename: same name, another id.
    reasons = identity_reasons(who(repository_id="999"), pinned, ref_problem=None)
    assert [r.code for r in reasons] == [codes.REPOSITORY_NOT_ALLOWED]
    assert "repository id '999' is not one of: 123456" in reasons[0].message
    # The right id under another name does not pass either: both must match.
    assert codes_of(who(repository="acme/other"), pinned) == [codes.REPOSITORY_NOT_ALLOWED]


def test_a_token_without_a_repository_id_is_refused_when_ids_are_listed() -> None:
    reasons = identity_reasons(who(repository_id=None), rules(repository_ids=("123456",)), ref_problem=None)
    assert [r.code for r in reasons] == [codes.REPOSITORY_NOT_ALLOWED]
    assert "states no repository id" in reasons[0].message


def test_without_repository_ids_any_id_passes() -> None:
    assert codes_of(who(repository_id=None), POLICY) == []


# --- protected environment ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("protected", "expected"),
    [(True, []), (False, [codes.ENVIRONMENT_NOT_PROTECTED]), (None, [codes.ENVIRONMENT_NOT_PROTECTED])],
)
def test_require_protected_environment(protected: bool | None, expected: list[str]) -> None:
    identity = who(environment="production", environment_protected=protected)
    assert codes_of(identity, rules(require_protected_environment=True)) == expected
    assert codes_of(identity, POLICY) == []  # not required: no restriction


# --- runner ids compare as strings -------------------------------------------------------------------------


def test_runner_ids_compare_as_strings() -> None:
    assert codes_of(who(runner_id="42"), rules(runner_ids=("42",))) == []
    assert codes_of(who(runner_id="43"), rules(runner_ids=("42",))) == [codes.RUNNER_NOT_ALLOWED]


# --- the source of a workload (what makes it an insider) ---------------------------------------------------


@pytest.mark.parametrize(
    ("identity", "policy", "admitted"),
    [
        (WHO, POLICY, True),
        (who(issuer="gitlab"), POLICY, False),
        (who(repository="evil/outsider"), POLICY, False),
        (who(repository=None), POLICY, False),
        (WHO, rules(repositories=("acme/*",)), True),
        (WHO, rules(repositories=()), False),
        (WHO, rules(repository_ids=("123456",)), True),
        (who(repository_id="999"), rules(repository_ids=("123456",)), False),
        (who(repository_id=None), rules(repository_ids=("123456",)), False),
        # Everything else is not about the source: a wrong branch or event is still an insider.
        (who(branch="feature/x", event="workflow_run"), rules(environments=("production",)), True),
    ],
)
def test_admits_source(identity: WorkloadIdentity, policy: PolicyView, admitted: bool) -> None:
    assert admits_source(policy, identity) is admitted
