"""Claims longer than the ledger's columns (issue 17, defect 3).

A ref over 255 characters, on PostgreSQL, answered ``400 invalid-value`` instead of ``403 invalid_ref``, and
the denial was not in the ledger: its ``ref`` column is 255 wide, so storing the event failed. A denial is
always recorded: a column keeps the value cut to its width and the event's ``details.truncated`` names it
(the whole identity stays in ``details.identity``).
"""

from __future__ import annotations

from typing import Any

import pytest

from app.identity.oidc import MAX_TOKEN_BYTES
from tests.support.broker import Broker

SHORT_WORKFLOW = "acme/payments/.github/workflows/deploy.yml@refs/heads/main"


def _denials(broker: Broker) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = broker.admin("GET", "/v1/audit/events?action=lease.denied").get_json()[
        "items"
    ]
    return items


def _codes(response: Any) -> set[str]:
    assert response.status_code == 403, response.get_data(as_text=True)
    return {r["code"] for r in response.get_json()["reasons"]}


def _token_with_ref(broker: Broker, ref: str) -> str:
    """A token whose ref appears once (the subject names an environment, the workflow refs a short ref)."""
    claims = broker.issuer.github_claims(ref=ref, environment="production")
    token = broker.issuer.mint(
        claims={**claims, "workflow_ref": SHORT_WORKFLOW, "job_workflow_ref": SHORT_WORKFLOW}
    )
    assert len(token) <= MAX_TOKEN_BYTES
    return token


@pytest.mark.parametrize(
    ("ref", "cut"),
    [
        ("refs/heads/" + "a" * 289, ["branch", "ref"]),  # 300 bytes
        ("refs/heads/" + "é" * 300, ["branch", "ref"]),  # two bytes a character: cut between characters
        ("refs/heads/" + "b" * 11_000, ["branch", "ref"]),  # as large as a 16 KiB token holds
    ],
    ids=["300-bytes", "multibyte", "11-KiB"],
)
def test_a_long_ref_is_denied_as_invalid_and_the_denial_is_in_the_ledger(
    broker: Broker, ref: str, cut: list[str]
) -> None:
    response = broker.request_lease("prod-vault-token", _token_with_ref(broker, ref))
    assert "invalid_ref" in _codes(response)
    [event] = _denials(broker)
    assert event["ref"] == ref[:255]
    assert event["branch"] == ref.removeprefix("refs/heads/")[:255]
    assert event["details"]["truncated"] == cut
    assert event["details"]["identity"]["ref"] == ref  # the whole value is kept where there is room
    verified = broker.verified_log()
    assert verified["ok"] is True and verified["checked"] == verified["size"] > 0


def test_a_ref_that_fits_is_not_marked(broker: Broker) -> None:
    ref = "refs/heads/" + "é" * 200  # 411 bytes, but 211 characters: the column counts characters
    response = broker.request_lease("prod-vault-token", _token_with_ref(broker, ref))
    assert "invalid_ref" in _codes(response)
    [event] = _denials(broker)
    assert event["ref"] == ref
    assert "truncated" not in event["details"]


def test_a_long_repository_name_is_denied_and_recorded(broker: Broker) -> None:
    repository = "acme/" + "r" * 600  # also longer than the actor column (512)
    response = broker.request_lease("prod-vault-token", broker.ci_token(repo=repository))
    assert response.status_code == 403, response.get_data(as_text=True)
    [event] = _denials(broker)
    assert event["repository"] == repository[:255]
    assert event["actor"]["id"] == f"{repository}@run-8412345678"[:512]
    assert event["details"]["truncated"] == ["actor_id", "repository"]
    assert event["details"]["identity"]["repository"] == repository


def test_a_long_repository_a_policy_allows_gets_its_lease(broker: Broker) -> None:
    """The lease's own columns are copies for filtering; the identity keeps the whole name."""
    repository = "acme/" + "r" * 600
    broker.policy("any-acme", repositories=["acme/*"])
    lease = broker.lease("prod-vault-token", token=broker.ci_token(repo=repository))
    shown = broker.admin("GET", f"/v1/leases/{lease['id']}").get_json()
    assert shown["identity"]["repository"] == repository
    listed = broker.admin("GET", f"/v1/leases?repository={repository[:255]}").get_json()["items"]
    assert [found["id"] for found in listed] == [lease["id"]]
    [issued] = broker.admin("GET", "/v1/audit/events?action=lease.granted").get_json()["items"]
    assert issued["repository"] == repository[:255]
    assert issued["details"]["truncated"] == ["actor_id", "repository"]


def test_a_long_environment_is_recorded_whole_on_denial_and_on_grant(broker: Broker) -> None:
    environment = "e" * 5_000  # it appears twice in a token: in the subject and in its own claim
    denied = broker.request_lease(
        "prod-vault-token", broker.ci_token(environment=environment, ref="refs/heads/x")
    )
    assert "branch_not_allowed" in _codes(denied)
    [event] = _denials(broker)
    assert event["details"]["identity"]["environment"] == environment
    lease = broker.lease("prod-vault-token", token=broker.ci_token(environment=environment))
    assert (
        broker.admin("GET", f"/v1/leases/{lease['id']}").get_json()["identity"]["environment"] == environment
    )
