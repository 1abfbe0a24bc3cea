"""Issue 20 through the API on SQLite and PostgreSQL, against the real OpenBao: a policy binds the workflow
(``workflows``) and the client's network (``source_networks``), at issuance and at every renewal."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hvac.exceptions import Forbidden

from tests.integration.conftest import create_broker_token, make_app, rt
from tests.support.broker import Broker, bearer
from tests.support.oidc_issuer import OMIT, OidcIssuer
from tests.support.openbao import OpenBaoServer

DEPLOY = "acme/payments/.github/workflows/deploy.yml@refs/heads/main"
PROXY = {"REMOTE_ADDR": "10.0.0.1"}  # the one trusted proxy in front of the broker


def _policy(**overrides: Any) -> dict[str, Any]:
    return {
        "name": "deploy-prod",
        "issuer": "github",
        "secrets": ["prod-db-static", "prod-vault-token"],
        "repositories": ["acme/payments"],
        "branches": ["main", "release/*"],
        "windows": ["always"],
        "default_ttl": "15m",
        "max_ttl": "1h",
        **overrides,
    }


def _put(broker: Broker, **overrides: Any) -> dict[str, Any]:
    response = broker.admin("PUT", "/v1/policies/deploy-prod", _policy(**overrides))
    assert response.status_code == 200, response.get_json()
    shown: dict[str, Any] = response.get_json()
    return shown


def _codes(response: Any) -> list[str]:
    assert response.status_code == 403, response.get_json()
    return [r["code"] for r in response.get_json()["reasons"]]


def _token_works(broker: Broker, token: str) -> bool:
    with broker.vault.client_for(token) as client:
        try:
            client.auth.token.lookup_self()
            return True
        except Forbidden:
            return False


def _events(broker: Broker, action: str) -> list[dict[str, Any]]:
    response = broker.admin("GET", f"/v1/audit/events?action={action}")
    assert response.status_code == 200
    items: list[dict[str, Any]] = response.get_json()["items"]
    return items


@pytest.fixture
def proxied(
    database_url: str, openbao: OpenBaoServer, oidc_issuer: OidcIssuer, vault: OpenBaoServer
) -> Iterator[Broker]:
    """The usual broker behind one trusted proxy (TRANSOM_TRUSTED_PROXY_HOPS=1)."""
    app = make_app(database_url, openbao, trusted_proxy_hops=1)
    yield Broker.configured(app, create_broker_token(app, "admin"), oidc_issuer, vault)
    rt(app).engine.dispose()


def _from(broker: Broker, client_address: str, secret: str, token: str) -> Any:
    return broker.client.post(
        "/v1/leases",
        json={"secret": secret},
        headers={**bearer(token), "X-Forwarded-For": client_address},
        environ_base=PROXY,
    )


def _renew_from(broker: Broker, client_address: str, lease_id: str) -> Any:
    return broker.client.post(
        f"/v1/leases/{lease_id}/renew",
        json={},
        headers={**bearer(broker.ci_token()), "X-Forwarded-For": client_address},
        environ_base=PROXY,
    )


# --- workflows ---------------------------------------------------------------------------------------------


def test_only_the_deploy_workflow_obtains_the_secret(broker: Broker) -> None:
    shown = _put(broker, workflows=[DEPLOY])
    assert shown["workflows"] == [DEPLOY] and shown["source_networks"] is None

    lease = broker.lease("prod-vault-token")  # the test issuer's default job is deploy.yml on main
    assert broker.admin("GET", f"/v1/leases/{lease['id']}").get_json()["identity"]["workflow"] == DEPLOY

    lint = broker.request_lease("prod-vault-token", broker.ci_token(workflow="lint"))
    assert _codes(lint) == ["workflow_not_allowed"]
    assert "lint.yml" in lint.get_json()["reasons"][0]["message"]

    none = broker.request_lease("prod-vault-token", broker.issuer.mint({"job_workflow_ref": OMIT}))
    assert _codes(none) == ["workflow_not_allowed"]
    assert "states no workflow" in none.get_json()["reasons"][0]["message"]

    denied = _events(broker, "lease.denied")
    assert denied[0]["details"]["identity"]["workflow"] is None
    assert denied[1]["details"]["identity"]["workflow"].endswith("lint.yml@refs/heads/main")


def test_a_central_reusable_workflow_is_bound_by_pattern(broker: Broker) -> None:
    _put(broker, workflows=["acme/ci/.github/workflows/deploy.yml@refs/heads/*"])
    central = broker.issuer.mint({"job_workflow_ref": "acme/ci/.github/workflows/deploy.yml@refs/heads/main"})
    assert broker.request_lease("prod-vault-token", central).status_code == 201
    fork = broker.issuer.mint({"job_workflow_ref": "evil/ci/.github/workflows/deploy.yml@refs/heads/main"})
    assert _codes(broker.request_lease("prod-vault-token", fork)) == ["workflow_not_allowed"]


@pytest.mark.parametrize(
    "hostile",
    [DEPLOY + "\n" + DEPLOY, DEPLOY + "\u2028x", DEPLOY + "/" + "a" * 6_000, "*", "**"],
    ids=["newline", "line-separator", "huge", "star", "double-star"],
)
def test_hostile_workflow_values_are_just_not_matching(broker: Broker, hostile: str) -> None:
    _put(broker, workflows=[DEPLOY])
    response = broker.request_lease("prod-vault-token", broker.issuer.mint({"job_workflow_ref": hostile}))
    assert _codes(response) == ["workflow_not_allowed"]
    message = response.get_json()["reasons"][0]["message"]
    assert "\n" not in message and "\u2028" not in message and len(message) < 1000
    assert _events(broker, "lease.denied")[0]["details"]["identity"]["workflow"] == hostile  # recorded whole


def test_a_bad_workflow_pattern_and_an_empty_list_are_400(broker: Broker) -> None:
    bad = broker.admin("PUT", "/v1/policies/deploy-prod", _policy(workflows=["acme/ci/deploy.yml\n"]))
    assert bad.status_code == 400 and "workflows" in bad.get_json()["errors"]
    empty = broker.admin("PUT", "/v1/policies/deploy-prod", _policy(workflows=[]))
    assert empty.status_code == 400 and "workflows" in empty.get_json()["errors"]


# --- source networks ---------------------------------------------------------------------------------------


def test_a_trusted_proxys_forwarded_address_is_judged(proxied: Broker) -> None:
    _put(proxied, source_networks=["10.1.0.0/16"])
    granted = _from(proxied, "10.1.2.3", "prod-vault-token", proxied.ci_token())
    assert granted.status_code == 201, granted.get_json()
    assert proxied.admin("GET", f"/v1/leases/{granted.get_json()['id']}").get_json()["source_address"] == (
        "10.1.2.3"
    )
    [grant] = _events(proxied, "lease.granted")
    assert grant["details"]["source_address"] == "10.1.2.3"

    refused = _from(proxied, "192.0.2.7", "prod-vault-token", proxied.ci_token(run_id="2"))
    assert _codes(refused) == ["network_not_allowed"]
    message = refused.get_json()["reasons"][0]["message"]
    assert "192.0.2.7" in message and "10.1.0.0" not in message  # a token thief learns no allowed network
    [denial] = _events(proxied, "lease.denied")
    assert denial["details"]["source_address"] == "192.0.2.7"


def test_ipv6_networks(proxied: Broker) -> None:
    _put(proxied, source_networks=["2001:db8:1::/48", "10.1.0.0/16"])
    assert _from(proxied, "2001:db8:1::7", "prod-db-static", proxied.ci_token()).status_code == 201
    assert _codes(_from(proxied, "2001:db8:2::7", "prod-db-static", proxied.ci_token(run_id="2"))) == [
        "network_not_allowed"
    ]


def test_without_trusted_hops_a_forwarded_address_is_not_believed(broker: Broker) -> None:
    _put(broker, source_networks=["10.1.0.0/16"])
    spoofed = broker.client.post(
        "/v1/leases",
        json={"secret": "prod-vault-token"},
        headers={**bearer(broker.ci_token()), "X-Forwarded-For": "10.1.2.3"},
        environ_base={"REMOTE_ADDR": "192.0.2.7"},
    )
    assert _codes(spoofed) == ["network_not_allowed"]
    assert "192.0.2.7" in spoofed.get_json()["reasons"][0]["message"]
    # From inside the network, the same policy grants.
    direct = broker.client.post(
        "/v1/leases",
        json={"secret": "prod-vault-token"},
        headers=bearer(broker.ci_token(run_id="2")),
        environ_base={"REMOTE_ADDR": "10.1.2.3"},
    )
    assert direct.status_code == 201, direct.get_json()


def test_a_renewal_from_another_network_is_denied_and_revokes_the_lease(proxied: Broker) -> None:
    _put(proxied, source_networks=["10.1.0.0/16"])
    granted = _from(proxied, "10.1.2.3", "prod-vault-token", proxied.ci_token())
    assert granted.status_code == 201, granted.get_json()
    lease = granted.get_json()
    assert _token_works(proxied, lease["data"]["token"])

    moved_within = _renew_from(proxied, "10.1.200.9", lease["id"])
    assert moved_within.status_code == 200, moved_within.get_json()
    assert moved_within.get_json()["source_address"] == "10.1.200.9"

    stolen = _renew_from(proxied, "192.0.2.7", lease["id"])
    assert _codes(stolen) == ["network_not_allowed"]
    shown = proxied.admin("GET", f"/v1/leases/{lease['id']}").get_json()
    assert shown["status"] == "revoked" and shown["end_reason"] == "policy_changed"
    assert not _token_works(proxied, lease["data"]["token"])  # dead at OpenBao
    [denied] = _events(proxied, "lease.renew_denied")
    assert denied["details"]["source_address"] == "192.0.2.7"
    [renewed] = _events(proxied, "lease.renewed")
    assert renewed["details"]["source_address"] == "10.1.200.9"


def test_a_policy_given_source_networks_ends_leases_obtained_elsewhere(proxied: Broker) -> None:
    inside = _from(proxied, "10.1.2.3", "prod-vault-token", proxied.ci_token()).get_json()
    outside = _from(proxied, "192.0.2.7", "prod-vault-token", proxied.ci_token(run_id="2")).get_json()
    _put(proxied, source_networks=["10.1.0.0/16"])
    assert proxied.admin("GET", f"/v1/leases/{inside['id']}").get_json()["status"] == "active"
    assert proxied.admin("GET", f"/v1/leases/{outside['id']}").get_json()["status"] == "revoked"
    assert not _token_works(proxied, outside["data"]["token"])


@pytest.mark.parametrize(
    "cidr", ["10.1.2.3/16", "10.1.0.0/33", "not-a-network", "10.1.0.0/16 ", "", "2001:db8::/129", 10]
)
def test_a_bad_cidr_is_400(broker: Broker, cidr: Any) -> None:
    response = broker.admin("PUT", "/v1/policies/deploy-prod", _policy(source_networks=["10.2.0.0/16", cidr]))
    assert response.status_code == 400, response.get_json()
    assert "source_networks" in response.get_json()["errors"]


def test_cidrs_are_stored_in_normal_form(broker: Broker) -> None:
    shown = _put(broker, source_networks=["2001:DB8:0::/32", "10.1.0.0/16", "10.1.0.0/16"])
    assert shown["source_networks"] == ["2001:db8::/32", "10.1.0.0/16"]


# --- the dry run -------------------------------------------------------------------------------------------


def test_evaluate_with_and_without_a_source_address(broker: Broker) -> None:
    _put(broker, source_networks=["10.1.0.0/16"], workflows=[DEPLOY])

    def evaluate(token: str, **extra: Any) -> Any:
        body = {"token": token, "secret": "prod-vault-token", **extra}
        return broker.admin("POST", "/v1/policies/deploy-prod/evaluate", body)

    inside = evaluate(broker.ci_token(), source_address="10.1.2.3")
    assert inside.status_code == 200 and inside.get_json()["allowed"] is True, inside.get_json()

    v6 = evaluate(broker.ci_token(), source_address="2001:db8::1").get_json()
    assert [r["code"] for r in v6["reasons"]] == ["network_not_allowed"]

    without = evaluate(broker.ci_token()).get_json()
    assert without["allowed"] is False
    [reason] = without["reasons"]
    assert reason["code"] == "network_not_allowed" and "no client address was given" in reason["message"]

    other = evaluate(broker.ci_token(workflow="lint"), source_address="10.1.2.3").get_json()
    assert [r["code"] for r in other["reasons"]] == ["workflow_not_allowed"]

    assert evaluate(broker.ci_token(), source_address="10.1.2").status_code == 400
    evaluated = _events(broker, "policy.evaluated")
    # Newest first: the lint workflow's, the one without an address, the IPv6 one.
    assert [e["details"].get("source_address") for e in evaluated[:3]] == ["10.1.2.3", None, "2001:db8::1"]
