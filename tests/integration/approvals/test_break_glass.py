"""Break-glass: people approve an exception to a policy's windows and freezes — only those, and only for
a policy that allows it; the lease is capped by the exception's max_ttl and the ledger says who and why."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.instants import format_instant
from tests.integration.approvals.conftest import People, ask
from tests.support.broker import Broker, bearer, policy_body

BREAK_GLASS = {"required": 2, "approvers": ["alice", "bob"], "max_ttl": "30m", "timeout": "15m"}
WHY = "prod is down: INC-4711"


def _once(start: datetime, end: datetime) -> dict[str, Any]:
    return {"type": "once", "start": format_instant(start), "end": format_instant(end)}


def _closed_window(broker: Broker) -> None:
    later = datetime.now(UTC).replace(microsecond=0) + timedelta(days=10)
    broker.create(
        "/v1/windows",
        {"name": "next-month", "timezone": "UTC", "schedule": _once(later, later + timedelta(hours=1))},
    )
    _policy(broker, windows=["next-month"])


def _policy(broker: Broker, **overrides: Any) -> None:
    body = policy_body(**{"break_glass": BREAK_GLASS, **overrides})
    response = broker.admin("PUT", "/v1/policies/deploy-prod", body)
    assert response.status_code == 200, response.get_json()


def _freeze(broker: Broker) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    body = {
        "name": "incident",
        "timezone": "UTC",
        "schedule": _once(now - timedelta(minutes=1), now + timedelta(hours=2)),
    }
    broker.create("/v1/freezes", {**body, "reason": "change freeze"})


def _approve(people: People, request_id: str) -> None:
    for name in ("alice", "bob"):
        assert people.decide(name, request_id).status_code == 200


def test_break_glass_opens_a_closed_window_capped_by_its_max_ttl(broker: Broker, people: People) -> None:
    _closed_window(broker)
    token = broker.ci_token()
    refused = broker.request_lease("prod-vault-token", token)
    assert refused.status_code == 403 and [r["code"] for r in refused.get_json()["reasons"]] == [
        "outside_window"
    ]
    request = ask(broker, token=token, justification=WHY, ttl="1h")
    assert request["kind"] == "break_glass" and request["justification"] == WHY
    assert request["approvers"] == ["alice", "bob"]
    _approve(people, request["id"])

    claimed = broker.request_lease("prod-vault-token", token, approval=request["id"])
    assert claimed.status_code == 201, claimed.get_json()
    lease = claimed.get_json()
    assert lease["bounded_by"] == "break_glass" and lease["ttl"] == 1800
    with broker.vault.client_for(lease["data"]["token"]) as client:
        assert client.auth.token.lookup_self()["data"]["ttl"] <= 1800

    events = broker.admin("GET", f"/v1/audit/events?action=lease.granted&lease_id={lease['id']}").get_json()[
        "items"
    ]
    assert events[0]["details"]["break_glass"] == {"justification": WHY, "approvers": ["alice", "bob"]}
    # A later configuration change does not take the exception back for the calendar it excused.
    _policy(broker, windows=["next-month"], default_ttl="10m")
    shown = broker.admin("GET", f"/v1/leases/{lease['id']}").get_json()
    assert shown["status"] == "active"
    renewed = broker.client.post(
        f"/v1/leases/{lease['id']}/renew", json={"ttl": "10m"}, headers=bearer(broker.ci_token())
    )
    assert renewed.status_code == 200, renewed.get_json()
    metrics = broker.client.get("/metrics").get_data(as_text=True)
    assert 'transom_break_glass_granted_total{policy="deploy-prod"}' in metrics


def test_break_glass_overrides_a_freeze(broker: Broker, people: People) -> None:
    _policy(broker)
    _freeze(broker)
    token = broker.ci_token()
    assert broker.request_lease("prod-vault-token", token).get_json()["reasons"][0]["code"] == "freeze_active"
    request = ask(broker, token=token, justification=WHY)
    _approve(people, request["id"])
    claimed = broker.request_lease("prod-vault-token", token, approval=request["id"])
    assert claimed.status_code == 201, claimed.get_json()
    assert claimed.get_json()["bounded_by"] == "requested"  # the default 15m is inside the 30m exception


@pytest.mark.parametrize(
    ("claims", "code"),
    [
        ({"ref": "refs/heads/feature"}, "branch_not_allowed"),
        ({"event": "pull_request"}, "event_not_allowed"),
        ({"runner_environment": "self-hosted"}, "runner_not_allowed"),
    ],
)
def test_break_glass_never_excuses_another_refusal(
    broker: Broker, people: People, claims: dict[str, str], code: str
) -> None:
    _closed_window(broker)
    _policy(broker, windows=["next-month"], runners={"environments": ["github-hosted"]})
    response = broker.request_lease("prod-vault-token", broker.ci_token(**claims), justification=WHY)
    assert response.status_code == 403
    assert code in [r["code"] for r in response.get_json()["reasons"]]


def test_break_glass_from_another_repository_learns_nothing(broker: Broker, people: People) -> None:
    _closed_window(broker)
    response = broker.request_lease("prod-vault-token", broker.ci_token(repo="evil/fork"), justification=WHY)
    assert response.status_code == 403
    assert [r["code"] for r in response.get_json()["reasons"]] == ["no_policy"]


def test_break_glass_needs_a_policy_that_allows_it(broker: Broker, people: People) -> None:
    _closed_window(broker)
    _policy(broker, windows=["next-month"], break_glass=None)
    response = broker.request_lease("prod-vault-token", justification=WHY)
    assert response.status_code == 403
    assert [r["code"] for r in response.get_json()["reasons"]] == ["outside_window"]


def test_the_policy_losing_break_glass_ends_the_request(broker: Broker, people: People) -> None:
    _closed_window(broker)
    request = ask(broker, justification=WHY)
    _policy(broker, windows=["next-month"], break_glass=None)
    shown = people.read("alice", request["id"]).get_json()
    assert shown["status"] == "expired" and shown["end_reason"] == "policy_changed"


def test_a_break_glass_rule_is_validated(broker: Broker) -> None:
    for bad in (
        {"required": 0},
        {"required": 3, "approvers": ["alice", "bob"]},
        {"required": 1, "timeout": "5s"},
        {"required": 1, "max_ttl": "1s"},
        {"required": 1, "approvers": ["Not A Name"]},
        {"required": 1, "surprise": True},
        {"required": "2"},
    ):
        response = broker.admin("PUT", "/v1/policies/deploy-prod", policy_body(break_glass=bad))
        assert response.status_code == 400, bad
        assert response.mimetype == "application/problem+json"
    shown = broker.admin("PUT", "/v1/policies/deploy-prod", policy_body(break_glass=BREAK_GLASS)).get_json()
    assert shown["break_glass"] == {
        "required": 2,
        "approvers": ["alice", "bob"],
        "timeout": 900,
        "max_ttl": 1800,
    }
    assert shown["approval"] is None
