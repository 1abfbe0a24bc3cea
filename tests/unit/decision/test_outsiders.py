"""What a denied workload sees (app/decision/outsiders.py): an outsider learns nothing of the configuration
(issue 18, finding 5); an insider gets every reason."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from app.decision import reasons as codes
from app.decision.identity import WorkloadIdentity
from app.decision.intervals import Interval
from app.decision.outsiders import OUTSIDER_REASON, for_requester, is_insider
from app.decision.policy import CalendarFacts, Decision, decide
from tests.support.policy_views import policy_view

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
CLOSED = CalendarFacts(open_interval=None, next_opening=NOW + timedelta(days=1))
OPEN = CalendarFacts(open_interval=Interval(NOW - timedelta(hours=1), NOW + timedelta(hours=8)))

DEPLOY = policy_view(environments=("production",), windows=("weekday-deploys",))
# Another policy, for another secret: it alone makes acme/tools an insider.
TOOLS = replace(DEPLOY, name="tools", secrets=("tools-token",), repositories=("acme/tools",))
GITLAB = replace(DEPLOY, name="gitlab-migrations", issuer="gitlab", repositories=("acme/**",))
ALL = [DEPLOY, GITLAB, TOOLS]

INSIDER = WorkloadIdentity(
    issuer="github", repository="acme/payments", ref="refs/heads/main", ref_type="branch", branch="main",
    environment="production", event="push",
)  # fmt: skip
OUTSIDER = replace(INSIDER, repository="evil/outsider")


def _decision(identity: WorkloadIdentity, *, secret_known: bool = True) -> Decision:
    return decide(
        identity, None, [(DEPLOY, CLOSED, 0)], now=NOW, secret_known=secret_known, ref_problem=None,
        secret="prod-db",
    )  # fmt: skip


def test_an_outsider_sees_only_no_policy_whether_or_not_the_secret_exists() -> None:
    existing = for_requester(_decision(OUTSIDER), OUTSIDER, ALL)
    missing = for_requester(_decision(OUTSIDER, secret_known=False), OUTSIDER, ALL)
    assert existing == missing == Decision.denied([OUTSIDER_REASON])
    assert OUTSIDER_REASON.code == codes.NO_POLICY and OUTSIDER_REASON.policy is None
    # The message names nothing of the configuration: no secret, policy, issuer, window or instant.
    for leak in ("prod-db", "deploy-prod", "github", "gitlab", "weekday-deploys", "acme", "2026"):
        assert leak not in OUTSIDER_REASON.message


def test_an_insider_keeps_every_reason() -> None:
    decision = _decision(replace(INSIDER, environment="staging"))
    assert for_requester(decision, INSIDER, ALL) is decision
    assert [r.code for r in decision.reasons] == [codes.ENVIRONMENT_NOT_ALLOWED, codes.OUTSIDE_WINDOW]
    unknown = _decision(INSIDER, secret_known=False)
    assert for_requester(unknown, INSIDER, ALL).reasons[0].code == codes.UNKNOWN_SECRET


def test_any_policy_makes_an_insider_not_only_those_naming_the_secret() -> None:
    tools = replace(INSIDER, repository="acme/tools")
    assert is_insider(tools, ALL)
    assert [r.code for r in for_requester(_decision(tools), tools, ALL).reasons] == [
        codes.REPOSITORY_NOT_ALLOWED,
        codes.OUTSIDE_WINDOW,
    ]


def test_the_issuer_counts_too() -> None:
    # acme/payments is allowed on GitHub; the same name from the GitLab issuer is allowed by acme/**,
    # from an issuer no policy names it is an outsider.
    assert is_insider(replace(INSIDER, issuer="gitlab"), ALL)
    assert not is_insider(replace(INSIDER, issuer="other-ci"), ALL)


def test_repository_ids_decide_insider_ness_when_listed() -> None:
    pinned = [replace(DEPLOY, repository_ids=("123",))]
    assert is_insider(replace(INSIDER, repository_id="123"), pinned)
    assert not is_insider(replace(INSIDER, repository_id="999"), pinned)  # the name taken over
    assert not is_insider(INSIDER, pinned)  # no id stated


def test_a_grant_is_never_changed() -> None:
    granted = decide(INSIDER, None, [(DEPLOY, OPEN, 0)], now=NOW, secret_known=True, ref_problem=None)
    assert granted.allowed
    assert for_requester(granted, INSIDER, ALL) is granted


def test_without_any_policy_everyone_is_an_outsider() -> None:
    assert not is_insider(INSIDER, [])
