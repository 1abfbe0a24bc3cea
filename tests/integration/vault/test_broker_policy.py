"""Issue 18, findings 2 and 7: the broker's Vault identity is least privilege, proven at the real OpenBao.

The broker logs in by AppRole holding exactly config/vault/transom-broker.hcl (no default policy), as the
security review did, and tries what a compromised broker or a Transom admin would: mint a token with a
policy the token role does not list, list accessors, look up or revoke another application's token. Then it
runs every operation it needs, crash recovery included, and a leased token tries to outlive its window.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import hvac
import hvac.exceptions
import pytest
from flask import Flask

from app.vault.hvac_backend import HvacBackend
from app.vault.port import TOKEN_GUARD_POLICY, SecretSpec, TokenClaims, VaultRejected
from tests.integration.conftest import create_broker_token, make_app, rt
from tests.integration.vault.test_hvac_backend import (
    TOKEN,
    approle_credentials,
    issue,
    lookup_self,
    new_lease_id,
    role_leases,
    token_is_alive,
)
from tests.support.broker import bearer
from tests.support.openbao import DEPLOY_PROD_POLICY, TOKEN_ROLE, OpenBaoServer

pytestmark = pytest.mark.vault

SUPER_ADMIN_HCL = 'path "*" { capabilities = ["create", "read", "update", "delete", "list", "sudo"] }'


@pytest.fixture
def broker_login(vault: OpenBaoServer) -> Iterator[hvac.Client]:
    """A raw client holding the broker's AppRole token: what an attacker inside the broker holds."""
    role_id, secret_id = approle_credentials(vault)
    login = vault.client().auth.approle.login(role_id=role_id, secret_id=secret_id, use_token=False)
    assert login["auth"]["policies"] == ["transom-broker"]
    with vault.client_for(login["auth"]["client_token"]) as client:
        yield client


@pytest.fixture
def claims() -> dict[str, TokenClaims]:
    return {"now": TokenClaims(frozenset(), unsettled=1)}


@pytest.fixture
def approle_backend(vault: OpenBaoServer, claims: dict[str, TokenClaims]) -> Iterator[HvacBackend]:
    """The broker's Vault side, logged in by AppRole; its live tokens' claims are ``claims["now"]``."""
    role_id, secret_id = approle_credentials(vault)
    with HvacBackend(
        vault.addr, role_id=role_id, secret_id=secret_id, token_claims=lambda: claims["now"]
    ) as backend:
        yield backend


@pytest.fixture
def unrelated_token(vault: OpenBaoServer) -> dict[str, Any]:
    """Another application's token, created by someone else (root), with a policy the role also allows."""
    return vault.client().auth.token.create(policies=[DEPLOY_PROD_POLICY], ttl="10m")["auth"]  # type: ignore[no-any-return]


def refused(call: Callable[[], object]) -> type[Exception]:
    with pytest.raises((hvac.exceptions.Forbidden, hvac.exceptions.InvalidRequest)) as caught:
        call()
    return caught.type


# -- what the review did, and must fail now ------------------------------------------------------------------


def test_the_broker_cannot_mint_a_token_with_a_policy_the_role_does_not_list(
    vault: OpenBaoServer, broker_login: hvac.Client
) -> None:
    vault.write_policy("super-admin", SUPER_ADMIN_HCL)
    body = {"policies": ["super-admin"], "ttl": "5m"}

    assert refused(lambda: broker_login.write_data(f"auth/token/create/{TOKEN_ROLE}", data=body))
    assert refused(lambda: broker_login.write_data("auth/token/create-orphan", data=body))
    assert refused(lambda: broker_login.write_data("auth/token/create", data=body))
    # nor name a token id (sudo), nor reshape the role itself
    named = {"policies": [DEPLOY_PROD_POLICY], "id": "chosen-by-the-broker"}
    assert refused(lambda: broker_login.write_data(f"auth/token/create/{TOKEN_ROLE}", data=named))
    widened = {"allowed_policies": ["super-admin"], "orphan": True}
    assert refused(lambda: broker_login.write_data(f"auth/token/roles/{TOKEN_ROLE}", data=widened))


def test_the_broker_cannot_list_look_up_or_revoke_another_applications_token(
    vault: OpenBaoServer, broker_login: hvac.Client, unrelated_token: dict[str, Any]
) -> None:
    accessor = unrelated_token["accessor"]

    assert refused(lambda: broker_login.auth.token.list_accessors())
    assert refused(lambda: broker_login.auth.token.lookup_accessor(accessor))
    assert refused(lambda: broker_login.auth.token.revoke_accessor(accessor))
    assert refused(lambda: broker_login.sys.list_leases("auth/token/create/"))
    assert refused(lambda: broker_login.sys.revoke_prefix("auth/token/create"))
    assert refused(lambda: broker_login.sys.read_lease("auth/token/create/h0123"))

    assert token_is_alive(vault, unrelated_token["client_token"])


# -- what the broker needs, under exactly that policy --------------------------------------------------------


def test_the_broker_issues_renews_and_revokes_its_own_tokens(
    vault: OpenBaoServer, approle_backend: HvacBackend
) -> None:
    approle_backend.health()
    assert approle_backend.token_role_policies().refused(["super-admin", DEPLOY_PROD_POLICY]) == [
        "super-admin"
    ]
    credential = issue(approle_backend, TOKEN)
    token = credential.data["token"]
    assert sorted(lookup_self(vault, token)["policies"]) == [
        "default",
        DEPLOY_PROD_POLICY,
        TOKEN_GUARD_POLICY,
    ]

    assert approle_backend.renew(credential.handle, ttl=timedelta(minutes=3)) == timedelta(minutes=3)
    approle_backend.revoke(credential.handle)

    assert not token_is_alive(vault, token)
    approle_backend.revoke(credential.handle)  # idempotent


def test_the_broker_refuses_a_secret_whose_policy_the_role_refuses(approle_backend: HvacBackend) -> None:
    with pytest.raises(VaultRejected) as caught:
        issue(approle_backend, SecretSpec("escalate", "token", policies=("super-admin",)))

    assert caught.value.error_class == "invalid_request"


def test_crash_recovery_revokes_only_the_brokers_unclaimed_tokens(
    vault: OpenBaoServer,
    approle_backend: HvacBackend,
    claims: dict[str, TokenClaims],
    unrelated_token: dict[str, Any],
) -> None:
    crashed = new_lease_id()
    lost = issue(approle_backend, TOKEN, lease_id=crashed)  # the broker died before storing this handle
    kept = issue(approle_backend, TOKEN)
    claimed = (role_leases(vault) - {str(lost.handle.lease_id)}) | {str(kept.handle.lease_id)}
    claims["now"] = TokenClaims(frozenset(claimed))

    assert approle_backend.revoke_by_lease_id(crashed) == 1

    assert not token_is_alive(vault, lost.data["token"])
    assert token_is_alive(vault, kept.data["token"])
    assert token_is_alive(vault, unrelated_token["client_token"])
    approle_backend.revoke(kept.handle)


# -- finding 7: a leased token cannot outlive its window -----------------------------------------------------


def test_a_leased_token_cannot_renew_itself_past_its_window(
    vault: OpenBaoServer, approle_backend: HvacBackend
) -> None:
    # A 60 s lease in a window that ends in 2 minutes: the lease service passes the window end as max_ttl.
    credential = approle_backend.issue(
        TOKEN, lease_id=new_lease_id(), ttl=timedelta(seconds=60), max_ttl=timedelta(minutes=2)
    )
    token = credential.data["token"]
    info = lookup_self(vault, token)  # the job may still look itself up
    assert info["explicit_max_ttl"] == 120 and info["ttl"] <= 60

    with vault.client_for(token) as job:
        assert refused(lambda: job.auth.token.renew_self(increment="1h"))
        assert refused(lambda: job.auth.token.renew(token, increment="1h"))
        assert refused(lambda: job.auth.token.renew_accessor(credential.data["accessor"], increment="1h"))

    assert lookup_self(vault, token)["ttl"] <= 60
    approle_backend.revoke(credential.handle)


# -- POST/PUT /v1/secrets refuse what the role does not allow ------------------------------------------------


@pytest.fixture
def approle_app(database_url: str, vault: OpenBaoServer) -> Iterator[Flask]:
    role_id, secret_id = approle_credentials(vault)
    app = make_app(database_url, vault, vault_token=None, vault_role_id=role_id, vault_secret_id=secret_id)
    yield app
    rt(app).engine.dispose()


def test_a_token_secret_naming_a_policy_the_role_refuses_is_a_clear_400(approle_app: Flask) -> None:
    client = approle_app.test_client()
    headers = bearer(create_broker_token(approle_app, "admin"))
    bad = {"name": "escalate", "kind": "token", "policies": [DEPLOY_PROD_POLICY, "super-admin"]}

    created = client.post("/v1/secrets", json=bad, headers=headers)

    assert created.status_code == 400, created.json
    assert created.content_type == "application/problem+json"
    detail = created.json["detail"]
    assert "super-admin" in detail and f"it allows: {DEPLOY_PROD_POLICY}" in detail
    assert client.get("/v1/secrets/escalate", headers=headers).status_code == 404

    good = {"name": "escalate", "kind": "token", "policies": [DEPLOY_PROD_POLICY]}
    assert client.post("/v1/secrets", json=good, headers=headers).status_code == 201
    replaced = client.put("/v1/secrets/escalate", json=bad, headers=headers)
    assert replaced.status_code == 400 and "super-admin" in replaced.json["detail"]
    assert client.get("/v1/secrets/escalate", headers=headers).json["policies"] == [DEPLOY_PROD_POLICY]
