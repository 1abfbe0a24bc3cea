"""`transom policies evaluate`: a dry run of a policy for a real CI token."""

from __future__ import annotations

from pathlib import Path

from tests.integration.admin.conftest import Transom
from tests.support.broker import Broker


def test_an_allowed_token_prints_when_the_lease_would_end(transom: Transom, broker: Broker) -> None:
    token_file = transom.file("token.jwt", broker.ci_token() + "\n")
    result = transom(
        "policies",
        "evaluate",
        "deploy-prod",
        "--secret",
        "prod-db-static",
        "--token-file",
        token_file,
        "--ttl",
        "600",
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "allowed: yes"
    assert any(line.startswith("expires_at: ") and line.endswith("Z") for line in lines)
    assert "bounded_by: requested" in lines
    assert "ttl: 600s" in lines
    assert "reasons: none" in lines

    # A dry run does not use the token up: it still obtains a lease.
    assert (
        broker.request_lease("prod-db-static", token=Path(token_file).read_text().strip()).status_code == 201
    )


def test_a_denied_token_prints_every_reason(transom: Transom, broker: Broker) -> None:
    token = broker.ci_token(ref="refs/heads/feature/x", repo="acme/other")
    result = transom(
        "policies", "evaluate", "deploy-prod", "--secret", "prod-db-static", "--token-file", "-", input=token
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith("allowed: no\n")
    assert "reasons:\n" in result.output
    assert "  - repository_not_allowed: " in result.output
    assert "  - branch_not_allowed: " in result.output
    assert "expires_at" not in result.output
    assert token not in result.output


def test_an_unknown_policy_is_the_servers_404(transom: Transom, broker: Broker) -> None:
    token_file = transom.file("token.jwt", broker.ci_token())
    result = transom("policies", "evaluate", "nope", "--secret", "prod-db-static", "--token-file", token_file)
    assert result.exit_code == 1
    assert "Not found (404): no policy named 'nope'" in result.output


def test_bad_arguments_come_back_as_field_errors(transom: Transom, broker: Broker) -> None:
    token_file = transom.file("token.jwt", broker.ci_token())
    result = transom(
        "policies", "evaluate", "deploy-prod", "--secret", "prod-db-static", "--token-file", token_file,
        "--at", "tomorrow", "--ttl", "1 hour",
    )  # fmt: skip
    assert result.exit_code == 1
    assert "(400)" in result.output
    assert "  at: " in result.output
    assert "  ttl: " in result.output


def test_a_source_address_is_judged_against_the_source_networks(transom: Transom, broker: Broker) -> None:
    policy = broker.admin("GET", "/v1/policies/deploy-prod").get_json()
    body = {k: v for k, v in policy.items() if k not in ("created_at", "updated_at")}
    updated = broker.admin("PUT", "/v1/policies/deploy-prod", {**body, "source_networks": ["10.1.0.0/16"]})
    assert updated.status_code == 200, updated.get_json()
    token_file = transom.file("token.jwt", broker.ci_token())
    args = ["policies", "evaluate", "deploy-prod", "--secret", "prod-db-static", "--token-file", token_file]

    inside = transom(*args, "--source-address", "10.1.2.3")
    assert inside.exit_code == 0 and inside.output.startswith("allowed: yes\n"), inside.output
    outside = transom(*args, "--source-address", "2001:db8::1")
    assert outside.output.startswith("allowed: no\n") and "  - network_not_allowed: " in outside.output
    without = transom(*args)
    assert "no client address was given" in without.output
