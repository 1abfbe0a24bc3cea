"""The context rules (app/decision/context_rules.py): a policy's workflows and source networks (issue 20)."""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.decision import reasons as codes
from app.decision.context_rules import address_in_networks, context_reasons, parse_address
from app.decision.identity import WorkloadIdentity
from app.decision.intervals import Interval
from app.decision.policy import CalendarFacts, PolicyView, check_policy, decide, renewal_decision
from tests.support.policy_views import policy_view

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
OPEN = CalendarFacts(open_interval=Interval(NOW - timedelta(hours=1), NOW + timedelta(hours=8)))
DEPLOY = "acme/payments/.github/workflows/deploy.yml@refs/heads/main"

WHO = WorkloadIdentity(
    issuer="github",
    repository="acme/payments",
    ref="refs/heads/main",
    ref_type="branch",
    branch="main",
    event="push",
    workflow=DEPLOY,
)
POLICY = policy_view()


def who(**changes: Any) -> WorkloadIdentity:
    return replace(WHO, **changes)


def rules(**changes: Any) -> PolicyView:
    return replace(POLICY, **changes)


def codes_of(identity: WorkloadIdentity, policy: PolicyView, address: str | None = None) -> list[str]:
    return [r.code for r in context_reasons(identity, policy, source_address=address)]


# --- workflows ---------------------------------------------------------------------------------------------


def test_without_workflows_any_workflow_or_none_passes() -> None:
    assert codes_of(who(workflow=None), rules()) == []
    assert codes_of(who(workflow="acme/payments/.github/workflows/other.yml@refs/heads/main"), rules()) == []


def test_the_deploy_workflow_passes_and_another_of_the_same_repository_and_branch_does_not() -> None:
    policy = rules(workflows=(DEPLOY,))
    assert codes_of(WHO, policy) == []
    other = who(workflow="acme/payments/.github/workflows/lint.yml@refs/heads/main")
    [reason] = context_reasons(other, policy, source_address=None)
    assert reason.code == codes.WORKFLOW_NOT_ALLOWED
    assert "lint.yml" in reason.message and DEPLOY in reason.message
    assert reason.policy == "deploy-prod"


def test_an_unknown_workflow_is_denied() -> None:
    [reason] = context_reasons(who(workflow=None), rules(workflows=(DEPLOY,)), source_address=None)
    assert reason.code == codes.WORKFLOW_NOT_ALLOWED
    assert "states no workflow" in reason.message


def test_workflow_patterns_follow_the_branch_pattern_semantics() -> None:
    central = rules(workflows=("acme/ci/.github/workflows/deploy.yml@refs/heads/*",))
    assert codes_of(who(workflow="acme/ci/.github/workflows/deploy.yml@refs/heads/main"), central) == []
    # `*` stays within one segment: refs/heads/feature/x is not refs/heads/*.
    deep = who(workflow="acme/ci/.github/workflows/deploy.yml@refs/heads/feature/x")
    assert codes_of(deep, central) == [codes.WORKFLOW_NOT_ALLOWED]
    # Case-sensitive, whole string.
    assert codes_of(who(workflow=DEPLOY.upper()), rules(workflows=(DEPLOY,))) == [codes.WORKFLOW_NOT_ALLOWED]
    assert codes_of(who(workflow=DEPLOY + "x"), rules(workflows=(DEPLOY,))) == [codes.WORKFLOW_NOT_ALLOWED]


@pytest.mark.parametrize(
    "hostile",
    [
        DEPLOY + "\n" + DEPLOY,
        DEPLOY + "\x00",
        "\n" + DEPLOY,
        DEPLOY + "/" + "a" * 100_000,
        "a" * 1_000_000,
        "**",
        "*",
    ],
)
def test_hostile_workflow_values_are_just_not_matching(hostile: str) -> None:
    policy = rules(workflows=(DEPLOY, "acme/ci/**"))
    [reason] = context_reasons(who(workflow=hostile), policy, source_address=None)
    assert reason.code == codes.WORKFLOW_NOT_ALLOWED
    assert "\n" not in reason.message and "\x00" not in reason.message
    assert len(reason.message) < 500


# --- source networks ---------------------------------------------------------------------------------------


def test_without_source_networks_any_address_or_none_passes() -> None:
    assert codes_of(WHO, rules(), None) == []
    assert codes_of(WHO, rules(), "192.0.2.7") == []


@pytest.mark.parametrize(
    ("networks", "address", "allowed"),
    [
        (("10.1.0.0/16",), "10.1.2.3", True),
        (("10.1.0.0/16",), "10.2.0.1", False),
        (("10.1.0.0/16",), "192.0.2.7", False),
        (("10.1.0.0/16", "192.0.2.0/24"), "192.0.2.7", True),
        (("2001:db8::/32",), "2001:db8:1::7", True),
        (("2001:db8::/32",), "2001:db9::1", False),
        (("10.1.0.0/16",), "::ffff:10.1.2.3", True),  # IPv4-mapped, from a dual-stack socket
        (("10.1.0.0/16",), "2001:db8::1", False),
        (("::/0",), "10.1.2.3", False),  # an IPv6 block does not hold an IPv4 address
        (("0.0.0.0/0",), "2001:db8::1", False),
        (("10.1.2.3/32",), "10.1.2.3", True),
    ],
)
def test_the_client_address_must_be_in_a_block(
    networks: tuple[str, ...], address: str, allowed: bool
) -> None:
    reasons = codes_of(WHO, rules(source_networks=networks), address)
    assert reasons == ([] if allowed else [codes.NETWORK_NOT_ALLOWED])


UNREADABLE = [None, "unknown", "", "10.1.2.3\n", "not an address", "10.1.2.3, 10.1.2.4"]


@pytest.mark.parametrize("address", UNREADABLE)
def test_a_missing_or_unreadable_address_is_unknown_and_denied(address: str | None) -> None:
    [reason] = context_reasons(WHO, rules(source_networks=("10.1.0.0/16",)), source_address=address)
    assert reason.code == codes.NETWORK_NOT_ALLOWED
    if address is None:
        assert "no client address was given" in reason.message
    assert "\n" not in reason.message


def test_the_denial_does_not_name_the_allowed_networks() -> None:
    [reason] = context_reasons(WHO, rules(source_networks=("10.1.0.0/16",)), source_address="192.0.2.7")
    assert "192.0.2.7" in reason.message and "10.1.0.0" not in reason.message


@given(
    address=st.ip_addresses(),
    network=st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)).flatmap(
        lambda a: st.integers(0, a.max_prefixlen).map(
            lambda p: ipaddress.ip_network(f"{a}/{p}", strict=False)
        )
    ),
)
def test_membership_agrees_with_the_standard_library(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
    network: ipaddress.IPv4Network | ipaddress.IPv6Network,
) -> None:
    expected = address.version == network.version and address in network
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        expected = expected or (network.version == 4 and address.ipv4_mapped in network)
    assert address_in_networks(address, [str(network)]) is expected
    assert parse_address(str(address)) == address


# --- in the decisions --------------------------------------------------------------------------------------


def test_decide_reports_both_reasons_with_the_others() -> None:
    policy = rules(workflows=(DEPLOY,), source_networks=("10.1.0.0/16",), branches=("release/*",))
    decision = decide(
        who(workflow=None), None, [(policy, OPEN, 0)], now=NOW, secret_known=True, ref_problem=None,
        source_address="192.0.2.7",
    )  # fmt: skip
    assert not decision.allowed
    assert [r.code for r in decision.reasons] == [
        codes.BRANCH_NOT_ALLOWED,
        codes.WORKFLOW_NOT_ALLOWED,
        codes.NETWORK_NOT_ALLOWED,
    ]


def test_decide_grants_from_inside_the_network_and_the_default_address_is_unknown() -> None:
    policy = rules(workflows=(DEPLOY,), source_networks=("10.1.0.0/16",))
    granted = decide(
        WHO,
        None,
        [(policy, OPEN, 0)],
        now=NOW,
        secret_known=True,
        ref_problem=None,
        source_address="10.1.2.3",
    )
    assert granted.allowed
    unknown = decide(WHO, None, [(policy, OPEN, 0)], now=NOW, secret_known=True, ref_problem=None)
    assert [r.code for r in unknown.reasons] == [codes.NETWORK_NOT_ALLOWED]


def test_a_renewal_is_judged_on_its_own_address() -> None:
    policy = rules(source_networks=("10.1.0.0/16",))

    def renew(address: str | None) -> list[str]:
        decision = renewal_decision(
            WHO, None, policy, OPEN, now=NOW, secret="prod-db", issued_at=NOW - timedelta(minutes=5),
            active_count=1, ref_problem=None, source_address=address,
        )  # fmt: skip
        return [r.code for r in decision.reasons]

    assert renew("10.1.9.9") == []
    assert renew("192.0.2.7") == [codes.NETWORK_NOT_ALLOWED]
    assert renew(None) == [codes.NETWORK_NOT_ALLOWED]


def test_check_policy_without_context_rules_is_unchanged() -> None:
    assert check_policy(who(workflow=None), POLICY, facts=OPEN, active_count=0, ref_problem=None) == []
