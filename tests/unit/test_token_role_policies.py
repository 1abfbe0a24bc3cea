"""What the Vault token role allows, as Transom reads it to refuse a token secret early (issue 18)."""

from __future__ import annotations

from app.vault.port import TOKEN_GUARD_POLICY, TokenRolePolicies

ROLE = TokenRolePolicies(
    "transom-lease",
    allowed=("deploy-prod", TOKEN_GUARD_POLICY),
    allowed_globs=("team-*-read",),
    disallowed=("team-admin-read",),
)


def test_listed_globbed_and_default_policies_pass() -> None:
    assert ROLE.refused(["deploy-prod", "team-payments-read", "default", TOKEN_GUARD_POLICY]) == []


def test_unlisted_and_disallowed_policies_are_named_in_order() -> None:
    assert ROLE.refused(["super-admin", "deploy-prod", "team-admin-read", "team-x"]) == [
        "super-admin",
        "team-admin-read",
        "team-x",
    ]


def test_a_role_without_allowed_policies_allows_nothing_but_default() -> None:
    assert TokenRolePolicies("bare").refused(["deploy-prod", "default"]) == ["deploy-prod"]
    assert TokenRolePolicies("bare").describe() == "none"


def test_the_description_names_what_an_admin_may_choose() -> None:
    assert ROLE.describe() == "deploy-prod, team-*-read"
