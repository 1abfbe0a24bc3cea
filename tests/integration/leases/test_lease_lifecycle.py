"""Leases end to end against the real OpenBao: what a CI job gets, and that it stops working when it ends."""

from __future__ import annotations

import pytest
from hvac.exceptions import Forbidden

from tests.support.broker import Broker, bearer, policy_body


def _token_works(broker: Broker, token: str) -> bool:
    with broker.vault.client_for(token) as client:
        try:
            client.auth.token.lookup_self()
            return True
        except Forbidden:
            return False


def test_kv_lease_returns_the_values(broker: Broker) -> None:
    values = broker.kv_secret("static-2", {"api_key": "canary-kv-1"})
    broker.admin("PUT", "/v1/policies/deploy-prod", {**policy_body(), "secrets": ["static-2"]})
    lease = broker.lease("static-2")
    assert lease["data"] == values
    assert lease["status"] == "active"
    assert lease["policy"] == "deploy-prod"
    assert lease["id"].startswith("lse_")


def test_token_lease_works_at_vault_until_released(broker: Broker) -> None:
    lease = broker.lease("prod-vault-token", ttl="10m")
    token = lease["data"]["token"]
    assert lease["ttl"] == 600 and lease["bounded_by"] == "requested"
    with broker.vault.client_for(token) as client:
        looked_up = client.auth.token.lookup_self()["data"]
    assert looked_up["ttl"] <= 600
    assert "deploy-prod" in looked_up["policies"]

    ci = bearer(broker.ci_token())
    response = broker.client.post(f"/v1/leases/{lease['id']}/release", headers=ci)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "released"
    assert not _token_works(broker, token)

    again = broker.client.post(f"/v1/leases/{lease['id']}/release", headers=ci)
    assert again.status_code == 409


def test_admin_revoke_ends_the_credential_at_vault(broker: Broker) -> None:
    lease = broker.lease("prod-vault-token")
    response = broker.admin("POST", f"/v1/leases/{lease['id']}/revoke", {"reason": "suspected leak"})
    assert response.status_code == 200
    assert response.get_json()["status"] == "revoked"
    assert not _token_works(broker, lease["data"]["token"])
    shown = broker.admin("GET", f"/v1/leases/{lease['id']}").get_json()
    assert shown["end_reason"] == "revoked" and shown["ended_at"]


def test_renew_moves_expiry_and_a_denied_renewal_revokes(broker: Broker) -> None:
    lease = broker.lease("prod-vault-token", ttl="5m")
    renewed = broker.client.post(
        f"/v1/leases/{lease['id']}/renew", json={"ttl": "20m"}, headers=bearer(broker.ci_token())
    )
    assert renewed.status_code == 200, renewed.get_json()
    assert renewed.get_json()["expires_at"] > lease["expires_at"]
    assert renewed.get_json()["renewals"] == 1

    broker.admin("PUT", "/v1/policies/deploy-prod", {**policy_body(), "branches": ["release/*"]})
    # The policy change alone already re-evaluated and revoked the lease.
    shown = broker.admin("GET", f"/v1/leases/{lease['id']}").get_json()
    assert shown["status"] == "revoked" and shown["end_reason"] == "policy_changed"
    assert not _token_works(broker, lease["data"]["token"])


def test_renewal_denied_by_policy_revokes_at_once(broker: Broker) -> None:
    lease = broker.lease("prod-vault-token")
    broker.lease("prod-vault-token", token=broker.ci_token(run_id="777"))  # another job's lease
    # max_active binds new grants and renewals, not re-evaluation: both leases stay until one renews.
    broker.admin("PUT", "/v1/policies/deploy-prod", {**policy_body(), "max_active": 1})
    response = broker.client.post(
        f"/v1/leases/{lease['id']}/renew", json={}, headers=bearer(broker.ci_token())
    )
    assert response.status_code == 403
    assert [r["code"] for r in response.get_json()["reasons"]] == ["max_active_reached"]
    shown = broker.admin("GET", f"/v1/leases/{lease['id']}").get_json()
    assert shown["status"] == "revoked" and shown["end_reason"] == "policy_changed"
    assert not _token_works(broker, lease["data"]["token"])


def test_another_workload_cannot_see_renew_or_release(broker: Broker) -> None:
    lease = broker.lease("prod-vault-token")
    stranger = bearer(broker.ci_token(run_id="999"))
    assert broker.client.get(f"/v1/leases/{lease['id']}", headers=stranger).status_code == 403
    assert broker.client.post(f"/v1/leases/{lease['id']}/renew", json={}, headers=stranger).status_code == 403
    assert broker.client.post(f"/v1/leases/{lease['id']}/release", headers=stranger).status_code == 403
    assert _token_works(broker, lease["data"]["token"])
    own = broker.client.get(f"/v1/leases/{lease['id']}", headers=bearer(broker.ci_token()))
    assert own.status_code == 200
    assert "data" not in own.get_json()
    assert own.get_json()["identity"]["repository"] == "acme/payments"


def test_a_token_obtains_one_lease_only(broker: Broker) -> None:
    token = broker.ci_token()
    assert broker.request_lease("prod-vault-token", token).status_code == 201
    again = broker.request_lease("prod-vault-token", token)
    assert again.status_code == 401
    assert again.get_json()["reasons"][0]["code"] == "token_replayed"


def test_idempotent_replay_reissues_and_revokes_the_earlier_credential(broker: Broker) -> None:
    first = broker.request_lease("prod-vault-token", idempotency_key="deploy-42")
    assert first.status_code == 201
    second = broker.request_lease("prod-vault-token", idempotency_key="deploy-42")
    assert second.status_code == 200
    assert second.get_json()["id"] == first.get_json()["id"]
    assert not _token_works(broker, first.get_json()["data"]["token"])
    assert _token_works(broker, second.get_json()["data"]["token"])

    broker.client.post(f"/v1/leases/{first.get_json()['id']}/release", headers=bearer(broker.ci_token()))
    after_end = broker.request_lease("prod-vault-token", idempotency_key="deploy-42")
    assert after_end.status_code == 409


def test_denial_lists_every_reason(broker: Broker) -> None:
    token = broker.ci_token(ref="refs/heads/feature/x", event="pull_request", environment="dev")
    broker.admin("PUT", "/v1/policies/deploy-prod", {**policy_body(), "environments": ["production"]})
    response = broker.request_lease("prod-vault-token", token)
    assert response.status_code == 403
    codes = {r["code"] for r in response.get_json()["reasons"]}
    assert codes == {"environment_not_allowed", "branch_not_allowed", "event_not_allowed"}


@pytest.mark.parametrize("secret", ["no-such-secret"])
def test_unknown_secret_is_denied(broker: Broker, secret: str) -> None:
    response = broker.request_lease(secret)
    assert response.status_code == 403
    assert response.get_json()["reasons"][0]["code"] == "unknown_secret"
