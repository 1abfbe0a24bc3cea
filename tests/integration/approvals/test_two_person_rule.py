"""The two-person rule end to end against the real OpenBao: a request waits, people approve it, the
workload claims its one lease; every step refused where it must be, and in the ledger."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hvac.exceptions import Forbidden

from app.approvals.jobs import expire_due_approvals
from app.clock import FrozenClock
from tests.integration.approvals.conftest import People, ask, require_approval
from tests.integration.conftest import rt
from tests.support.broker import Broker, bearer, policy_body


def _events(broker: Broker, action: str) -> list[dict[str, Any]]:
    response = broker.admin("GET", f"/v1/audit/events?action={action}")
    assert response.status_code == 200
    items: list[dict[str, Any]] = response.get_json()["items"]
    return items


def _token_works(broker: Broker, token: str) -> bool:
    with broker.vault.client_for(token) as client:
        try:
            client.auth.token.lookup_self()
            return True
        except Forbidden:
            return False


def test_two_approvers_then_one_working_lease(broker: Broker, people: People) -> None:
    require_approval(broker)
    token = broker.ci_token()
    request = ask(broker, token=token)
    assert request["status"] == "pending" and request["kind"] == "approval"
    assert request["required"] == 2 and request["approvals"] == [] and request["id"].startswith("apr_")
    assert request["workload"]["repository"] == "acme/payments" and request["workload"]["actor"] == "octocat"
    # The same token (its jti not used up) asks again: the same request.
    assert ask(broker, token=token)["id"] == request["id"]

    first = people.decide("alice", request["id"])
    assert first.status_code == 200, first.get_json()
    assert first.get_json()["status"] == "pending"
    assert [a["approver"] for a in first.get_json()["approvals"]] == ["alice"]
    twice = people.decide("alice", request["id"])
    assert twice.status_code == 409 and twice.mimetype == "application/problem+json"

    pending_claim = broker.request_lease("prod-vault-token", token, approval=request["id"])
    assert pending_claim.status_code == 409
    assert [r["code"] for r in pending_claim.get_json()["reasons"]] == ["approval_pending"]

    second = people.decide("bob", request["id"])
    assert second.get_json()["status"] == "approved"
    late = people.decide("carol", request["id"])
    assert late.status_code == 409

    claimed = broker.request_lease("prod-vault-token", token, approval=request["id"])
    assert claimed.status_code == 201, claimed.get_json()
    lease = claimed.get_json()
    assert _token_works(broker, lease["data"]["token"])
    again = broker.request_lease("prod-vault-token", broker.ci_token(), approval=request["id"])
    assert again.status_code == 409
    assert [r["code"] for r in again.get_json()["reasons"]] == ["approval_used"]
    shown = people.read("carol", request["id"]).get_json()
    assert shown["status"] == "used" and shown["lease_id"] == lease["id"]

    granted = [e for e in _events(broker, "lease.granted") if e["lease_id"] == lease["id"]]
    assert granted[0]["details"]["approval"] == request["id"]
    assert granted[0]["details"]["approvers"] == ["alice", "bob"]
    assert len(_events(broker, "approval.requested")) == 1
    assert len(_events(broker, "approval.approved")) == 2
    assert [e["details"]["approval"] for e in _events(broker, "approval.used")] == [request["id"]]


def test_self_approval_an_outsider_an_auditor_and_a_ci_token_are_refused(
    broker: Broker, people: People
) -> None:
    require_approval(broker)
    people.token("octo", ci_login="octocat")  # the person who triggered the run
    request = ask(broker)
    for name, code in (
        ("octo", "self_approval"),
        ("dave", "not_an_approver"),
        ("auditor-ann", "not_an_approver"),
    ):
        response = people.decide(name, request["id"])
        assert response.status_code == 403, name
        assert [r["code"] for r in response.get_json()["reasons"]] == [code]
    as_ci = broker.client.post(
        f"/v1/approvals/{request['id']}/approve", json={}, headers=bearer(broker.ci_token())
    )
    assert as_ci.status_code == 403 and as_ci.get_json()["reasons"][0]["code"] == "not_an_approver"
    assert people.read("alice", request["id"]).get_json()["approvals"] == []


def test_an_admin_approves_when_the_policy_names_no_approvers(broker: Broker, people: People) -> None:
    require_approval(broker, approval={"required": 1})
    request = ask(broker)
    response = broker.admin("POST", f"/v1/approvals/{request['id']}/approve", {"comment": "go"})
    assert response.get_json()["status"] == "approved"


def test_one_denial_ends_the_request(broker: Broker, people: People) -> None:
    require_approval(broker)
    token = broker.ci_token()
    request = ask(broker, token=token)
    assert people.decide("alice", request["id"]).status_code == 200
    denied = people.decide("bob", request["id"], "deny", "not during the incident")
    assert denied.get_json()["status"] == "denied"
    assert denied.get_json()["denial"]["comment"] == "not during the incident"
    assert people.decide("carol", request["id"]).status_code == 409
    claim = broker.request_lease("prod-vault-token", token, approval=request["id"])
    assert claim.status_code == 403
    assert [r["code"] for r in claim.get_json()["reasons"]] == ["approval_denied"]
    assert len(_events(broker, "approval.denied")) == 1
    # The request ended, so the workload may ask again: a new request.
    assert ask(broker)["id"] != request["id"]


def test_the_scheduler_expires_a_request_at_its_timeout(broker: Broker, people: People) -> None:
    require_approval(broker, approval={"required": 1, "timeout": "10s"})
    token = broker.ci_token()
    request = ask(broker, token=token)
    runtime = rt(broker.app)
    assert expire_due_approvals(runtime.sessions, runtime.clock, notify=False) == 0
    later = FrozenClock(datetime.now(UTC) + timedelta(seconds=11))
    assert expire_due_approvals(runtime.sessions, later, notify=False) == 1
    assert people.read("alice", request["id"]).get_json()["status"] == "expired"
    assert people.decide("alice", request["id"]).status_code == 409
    claim = broker.request_lease("prod-vault-token", token, approval=request["id"])
    assert claim.status_code == 403 and claim.get_json()["reasons"][0]["code"] == "approval_expired"
    assert _events(broker, "approval.expired")[0]["details"]["end_reason"] == "timeout"


def test_a_policy_change_that_takes_the_grant_away_ends_the_request(broker: Broker, people: People) -> None:
    require_approval(broker)
    request = ask(broker)
    people.decide("alice", request["id"])
    people.decide("bob", request["id"])
    narrowed = broker.admin(
        "PUT", "/v1/policies/deploy-prod", policy_body(approval={"required": 2}, branches=["release/*"])
    )
    assert narrowed.status_code == 200
    shown = people.read("alice", request["id"]).get_json()
    assert shown["status"] == "expired" and shown["end_reason"] == "policy_changed"
    event = _events(broker, "approval.expired")[0]
    assert "branch_not_allowed" in [r["code"] for r in event["reasons"]]


def test_another_workload_can_neither_read_nor_claim_the_request(broker: Broker, people: People) -> None:
    require_approval(broker, approval={"required": 1})
    request = ask(broker)
    people.decide("alice", request["id"])
    own = broker.client.get(f"/v1/approvals/{request['id']}", headers=bearer(broker.ci_token()))
    assert own.status_code == 200 and own.get_json()["status"] == "approved"
    sibling = broker.ci_token(environment="staging")  # another job of the same run
    read = broker.client.get(f"/v1/approvals/{request['id']}", headers=bearer(sibling))
    assert read.status_code == 403
    claim = broker.request_lease("prod-vault-token", sibling, approval=request["id"])
    assert claim.status_code == 403
    outsider = broker.ci_token(repo="evil/fork")
    assert broker.request_lease("prod-vault-token", outsider, approval=request["id"]).status_code == 403
    # Still there for its own workload.
    assert broker.request_lease("prod-vault-token", approval=request["id"]).status_code == 201


def test_hostile_values_are_refused_with_problem_json(broker: Broker, people: People) -> None:
    require_approval(broker)
    request = ask(broker)
    bad_bodies = [
        {"secret": "prod-vault-token", "approval": "lse_not-an-approval"},
        {"secret": "prod-vault-token", "approval": "apr_" + "x" * 500},
        {"secret": "prod-vault-token", "justification": ""},
        {"secret": "prod-vault-token", "justification": "x" * 501},
        {"secret": "prod-vault-token", "justification": 42},
    ]
    for body in bad_bodies:
        response = broker.client.post("/v1/leases", json=body, headers=bearer(broker.ci_token()))
        assert response.status_code == 400, body
        assert response.mimetype == "application/problem+json"
    unknown = broker.request_lease("prod-vault-token", approval="apr_unknown")
    assert unknown.status_code == 404
    wrong_secret = broker.request_lease("prod-db-static", approval=request["id"])
    assert wrong_secret.status_code == 400 and "secret" in wrong_secret.get_json()["errors"]
    extra = broker.client.post(
        f"/v1/approvals/{request['id']}/approve",
        json={"comment": "ok", "role": "admin"},
        headers=bearer(people.tokens["alice"]),
    )
    assert extra.status_code == 400
    long_comment = people.decide("alice", request["id"], comment="x" * 1001)
    assert long_comment.status_code == 400
    assert broker.admin("GET", "/v1/approvals?status=bogus").status_code == 400
    assert broker.admin("POST", "/v1/approvals/apr_nope/approve", {}).status_code == 404


def test_list_filters_and_roles(broker: Broker, people: People) -> None:
    require_approval(broker)
    request = ask(broker)
    for name in ("alice", "auditor-ann"):
        page = broker.client.get("/v1/approvals?status=pending", headers=bearer(people.tokens[name]))
        assert page.status_code == 200
        assert [item["id"] for item in page.get_json()["items"]] == [request["id"]]
    assert broker.admin("GET", "/v1/approvals?status=approved").get_json()["items"] == []
    assert broker.client.get("/v1/approvals", headers=bearer(broker.ci_token())).status_code == 403
    assert broker.client.get("/v1/approvals").status_code == 401
    # An approver reads, but changes no configuration.
    change = broker.client.put(
        "/v1/policies/deploy-prod", json=policy_body(), headers=bearer(people.tokens["alice"])
    )
    assert change.status_code == 403
