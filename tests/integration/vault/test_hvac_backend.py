"""HvacBackend against the real OpenBao (a dev server, tests/support/openbao.py) and the local PostgreSQL."""

from __future__ import annotations

import logging
import socket
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import hvac.exceptions
import psycopg
import pytest

from app.vault.hvac_backend import POOL_SIZE, HvacBackend
from app.vault.port import (
    TOKEN_GUARD_POLICY,
    IssuedCredential,
    SecretSpec,
    TokenClaims,
    VaultHandle,
    VaultRejected,
    VaultUnavailable,
)
from tests.support.openbao import (
    DATABASE_MOUNT,
    DATABASE_ROLE,
    DEPLOY_PROD_POLICY,
    TOKEN_ROLE,
    OpenBaoServer,
)

pytestmark = pytest.mark.vault

BROKER_POLICY = Path(__file__).resolve().parents[3] / "config" / "vault" / "transom-broker.hcl"
TTL = timedelta(minutes=2)
MAX_TTL = timedelta(minutes=10)
KV_VALUES = {"db_password": "s3cret-db-pw", "api_key": "s3cret-api-key", "region": "eu-central-1"}

KV = SecretSpec("prod-static", "kv", mount="secret", path="deploy/prod")
TOKEN = SecretSpec("prod-vault-token", "token", policies=(DEPLOY_PROD_POLICY,))
DYNAMIC = SecretSpec("prod-db", "dynamic", path=f"{DATABASE_MOUNT}/creds/{DATABASE_ROLE}")


def new_lease_id() -> str:
    return f"lease-{uuid.uuid4().hex}"


def issue(
    backend: HvacBackend, spec: SecretSpec, *, ttl: timedelta = TTL, lease_id: str | None = None
) -> IssuedCredential:
    return backend.issue(spec, lease_id=lease_id or new_lease_id(), ttl=ttl, max_ttl=MAX_TTL)


def lookup_self(vault: OpenBaoServer, token: str) -> dict[str, Any]:
    with vault.client_for(token) as job:
        return job.auth.token.lookup_self()["data"]


def token_is_alive(vault: OpenBaoServer, token: str) -> bool:
    try:
        lookup_self(vault, token)
    except hvac.exceptions.Forbidden:
        return False
    return True


def role_leases(vault: OpenBaoServer) -> set[str]:
    """The Vault lease ids of every live token of the broker's role (earlier tests leave some)."""
    prefix = f"auth/token/create/{TOKEN_ROLE}/"
    keys = vault.client().sys.list_leases(prefix)["data"]["keys"]
    return {prefix + key for key in keys}


def lost_leases(credentials: list[IssuedCredential]) -> set[str]:
    return {str(c.handle.lease_id) for c in credentials}


def pg_role(pg: dict[str, Any], name: str) -> tuple[bool, datetime | None] | None:
    with psycopg.connect(**pg) as conn:
        row = conn.execute(
            "SELECT rolcanlogin, rolvaliduntil FROM pg_roles WHERE rolname = %s", (name,)
        ).fetchone()
    return None if row is None else (row[0], row[1])


def assert_about(
    actual: datetime | None, expected: datetime, slack: timedelta = timedelta(seconds=20)
) -> None:
    assert actual is not None
    assert abs(actual - expected) <= slack, (actual, expected)


@pytest.fixture
def backend(vault: OpenBaoServer) -> Iterator[HvacBackend]:
    claims = TokenClaims(frozenset(), unsettled=1)  # recovery never sweeps here
    with HvacBackend(vault.addr, token=vault.root_token, token_claims=lambda: claims) as b:
        yield b


@pytest.fixture
def kv_secret(vault: OpenBaoServer) -> dict[str, str]:
    vault.write_kv("deploy/prod", KV_VALUES)
    return KV_VALUES


# -- kv ------------------------------------------------------------------------------------------------------


def test_kv_returns_all_values_and_has_nothing_to_renew_or_revoke(
    backend: HvacBackend, kv_secret: dict[str, str]
) -> None:
    credential = issue(backend, KV)

    assert credential.data == kv_secret
    assert credential.handle == VaultHandle("kv")
    assert credential.ttl is None
    assert backend.renew(credential.handle, ttl=TTL) is None
    backend.revoke(credential.handle)


def test_kv_returns_only_the_requested_keys(backend: HvacBackend, kv_secret: dict[str, str]) -> None:
    spec = SecretSpec("prod-db-static", "kv", mount="secret", path="deploy/prod", keys=("db_password",))

    assert issue(backend, spec).data == {"db_password": kv_secret["db_password"]}


def test_kv_missing_key_is_rejected_naming_the_key_and_no_value(
    backend: HvacBackend, kv_secret: dict[str, str]
) -> None:
    spec = SecretSpec(
        "prod-db-static", "kv", mount="secret", path="deploy/prod", keys=("db_password", "db_user")
    )

    with pytest.raises(VaultRejected) as caught:
        issue(backend, spec)

    assert caught.value.error_class == "key_not_found"
    assert "db_user" in str(caught.value)
    for value in kv_secret.values():
        assert value not in str(caught.value) and value not in repr(caught.value)


def test_kv_missing_path_is_rejected(backend: HvacBackend) -> None:
    with pytest.raises(VaultRejected) as caught:
        issue(backend, SecretSpec("nothing", "kv", mount="secret", path="deploy/does-not-exist"))

    assert caught.value.error_class == "invalid_path"


def test_credential_repr_hides_the_values(backend: HvacBackend, kv_secret: dict[str, str]) -> None:
    credential = issue(backend, KV)

    assert all(value not in repr(credential) for value in kv_secret.values())


# -- token ---------------------------------------------------------------------------------------------------


def test_token_works_at_vault_with_the_lease_ttl_policies_and_metadata(
    vault: OpenBaoServer, backend: HvacBackend, kv_secret: dict[str, str]
) -> None:
    lease_id = new_lease_id()
    spec = SecretSpec("prod-vault-token", "token", policies=(DEPLOY_PROD_POLICY,), num_uses=10)

    credential = issue(backend, spec, lease_id=lease_id)

    token, accessor = credential.data["token"], credential.data["accessor"]
    vault_lease = credential.handle.lease_id
    assert vault_lease is not None and vault_lease.startswith("auth/token/create/transom-lease/")
    assert credential.handle == VaultHandle("token", accessor=accessor, lease_id=vault_lease)
    assert token not in repr(credential.handle) and token not in repr(credential)
    assert credential.ttl == TTL
    info = lookup_self(vault, token)
    assert 0 < info["ttl"] <= TTL.total_seconds()
    assert info["explicit_max_ttl"] == MAX_TTL.total_seconds()
    assert sorted(info["policies"]) == ["default", DEPLOY_PROD_POLICY, TOKEN_GUARD_POLICY]
    assert info["meta"] == {"transom_lease": lease_id, "transom_secret": "prod-vault-token"}
    assert lease_id in info["display_name"]
    assert info["orphan"] is True and info["renewable"] is True
    assert 0 < info["num_uses"] <= 10
    with vault.client_for(token) as job:  # deploy-prod lets it read its secret
        read = job.secrets.kv.v2.read_secret_version(path="deploy/prod", raise_on_deleted_version=True)
    assert read["data"]["data"] == kv_secret


def test_token_renew_moves_its_ttl_up_to_the_max(vault: OpenBaoServer, backend: HvacBackend) -> None:
    credential = issue(backend, TOKEN, ttl=timedelta(minutes=1))
    token = credential.data["token"]

    assert backend.renew(credential.handle, ttl=timedelta(minutes=5)) == timedelta(minutes=5)
    assert 290 <= lookup_self(vault, token)["ttl"] <= 300

    # OpenBao renews a role's token up to the role's explicit max, not the token's: bounding a renewal is the
    # broker's decision (app/decision), and the token cannot renew itself (transom-token-guard).
    assert backend.renew(credential.handle, ttl=timedelta(minutes=8)) == timedelta(minutes=8)


def test_token_revoke_stops_it_and_revoking_twice_succeeds(
    vault: OpenBaoServer, backend: HvacBackend
) -> None:
    credential = issue(backend, TOKEN)
    assert token_is_alive(vault, credential.data["token"])

    backend.revoke(credential.handle)

    assert not token_is_alive(vault, credential.data["token"])
    backend.revoke(credential.handle)
    with pytest.raises(VaultRejected) as caught:
        backend.renew(credential.handle, ttl=TTL)
    assert caught.value.error_class == "not_found"


def test_token_spec_without_policies_is_refused() -> None:
    # Vault would give such a token the creator's policies: the broker's own.
    with pytest.raises(ValueError):
        SecretSpec("bad", "token", policies=())


def test_revoke_by_lease_id_revokes_the_unclaimed_tokens_of_the_role_only(vault: OpenBaoServer) -> None:
    claims = TokenClaims(frozenset())
    with HvacBackend(vault.addr, token=vault.root_token, token_claims=lambda: claims) as backend:
        crashed, other = new_lease_id(), new_lease_id()
        lost = [issue(backend, TOKEN, lease_id=crashed) for _ in range(2)]  # e.g. a retried issue
        kept = issue(backend, TOKEN, lease_id=other)
        with vault.client_for(vault.root_token) as root:  # not the broker's: outside its role
            created = root.auth.token.create(policies=[DEPLOY_PROD_POLICY], ttl="5m")
        unrelated = created["auth"]["client_token"]
        claims = TokenClaims(frozenset({str(kept.handle.lease_id), *role_leases(vault)}) - lost_leases(lost))

        assert backend.revoke_by_lease_id(crashed) == 2

        assert not any(token_is_alive(vault, c.data["token"]) for c in lost)
        assert token_is_alive(vault, kept.data["token"]) and token_is_alive(vault, unrelated)
        assert backend.revoke_by_lease_id(crashed) == 0
        backend.revoke(kept.handle)


def test_revoke_by_lease_id_spares_in_flight_issues_and_waits_for_unnamed_tokens(
    vault: OpenBaoServer,
) -> None:
    claims = TokenClaims(frozenset())
    with HvacBackend(vault.addr, token=vault.root_token, token_claims=lambda: claims) as backend:
        young = issue(backend, TOKEN)
        claims = TokenClaims(frozenset(), spare_after=datetime.now(UTC) - timedelta(seconds=30))
        assert backend.revoke_by_lease_id("lease-x") == 0  # issued after an in-flight issue began
        claims = TokenClaims(frozenset(), unsettled=1)
        with pytest.raises(VaultUnavailable) as caught:
            backend.revoke_by_lease_id("lease-x")
        assert caught.value.error_class == "recovery_deferred"
        assert token_is_alive(vault, young.data["token"])
        backend.revoke(young.handle)


# -- dynamic -------------------------------------------------------------------------------------------------


@pytest.mark.postgres
def test_dynamic_credential_lives_in_postgres_until_revoked(
    vault: OpenBaoServer, backend: HvacBackend, postgres: dict[str, Any]
) -> None:
    ttl = timedelta(minutes=5)  # the role's default_ttl is 1h: issue must renew the Vault lease down to 5m

    credential = issue(backend, DYNAMIC, ttl=ttl)

    username, password = credential.data["username"], credential.data["password"]
    vault_lease = credential.handle.lease_id
    assert vault_lease is not None and credential.handle == VaultHandle("dynamic", lease_id=vault_lease)
    assert credential.ttl == ttl
    assert 290 <= vault.client().sys.read_lease(lease_id=vault_lease)["data"]["ttl"] <= 300
    role = pg_role(postgres, username)
    assert role is not None and role[0] is True  # can log in ...
    assert_about(role[1], datetime.now(UTC) + ttl)  # ... until the lease ends (trust auth: proven here)
    with psycopg.connect(**{**postgres, "user": username, "password": password}) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (username,)

    backend.revoke(credential.handle)

    assert pg_role(postgres, username) is None
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(**{**postgres, "user": username, "password": password}).close()
    backend.revoke(credential.handle)  # already gone: still fine
    with pytest.raises(VaultRejected) as caught:
        backend.renew(credential.handle, ttl=ttl)
    assert caught.value.error_class == "not_found"


@pytest.mark.postgres
def test_dynamic_renew_moves_the_lease_and_valid_until(
    vault: OpenBaoServer, backend: HvacBackend, postgres: dict[str, Any]
) -> None:
    credential = issue(backend, DYNAMIC, ttl=timedelta(minutes=2))

    assert backend.renew(credential.handle, ttl=timedelta(minutes=10)) == timedelta(minutes=10)

    assert credential.handle.lease_id is not None
    assert 590 <= vault.client().sys.read_lease(lease_id=credential.handle.lease_id)["data"]["ttl"] <= 600
    role = pg_role(postgres, credential.data["username"])
    assert role is not None
    assert_about(role[1], datetime.now(UTC) + timedelta(minutes=10))
    backend.revoke(credential.handle)


def test_dynamic_path_that_returns_no_lease_is_rejected(
    backend: HvacBackend, kv_secret: dict[str, str]
) -> None:
    with pytest.raises(VaultRejected) as caught:
        issue(backend, SecretSpec("not-dynamic", "dynamic", path="secret/data/deploy/prod"))

    assert caught.value.error_class == "not_leased"


# -- Vault down, hanging, sealed -----------------------------------------------------------------------------


def test_stopped_vault_is_unavailable_for_every_operation(vault: OpenBaoServer, backend: HvacBackend) -> None:
    handle = issue(backend, TOKEN).handle
    vault.stop()

    calls = [
        backend.health,
        lambda: issue(backend, KV),
        lambda: issue(backend, TOKEN),
        lambda: backend.renew(handle, ttl=TTL),
        lambda: backend.revoke(handle),
        lambda: backend.revoke_by_lease_id("lease-x"),
    ]
    for call in calls:
        with pytest.raises(VaultUnavailable) as caught:
            call()
        assert caught.value.error_class == "connection_error"
        assert vault.root_token not in str(caught.value)


def test_paused_vault_times_out_as_unavailable(vault: OpenBaoServer, kv_secret: dict[str, str]) -> None:
    with HvacBackend(vault.addr, token=vault.root_token, timeout=0.5) as quick:
        quick.health()
        vault.pause()
        try:
            for call in (quick.health, lambda: issue(quick, KV)):
                with pytest.raises(VaultUnavailable) as caught:
                    call()
                assert caught.value.error_class == "timeout"
        finally:
            vault.resume()
        assert issue(quick, KV).data == kv_secret


def test_sealed_vault_is_unavailable(vault: OpenBaoServer, backend: HvacBackend) -> None:
    vault.seal()
    try:
        with pytest.raises(VaultUnavailable) as caught:
            backend.health()
        assert caught.value.error_class == "sealed"
        with pytest.raises(VaultUnavailable) as caught:
            issue(backend, TOKEN)
        assert caught.value.error_class == "vault_down"
    finally:
        vault.unseal()
    backend.health()


def test_backend_serves_many_threads_from_its_pool(
    backend: HvacBackend, kv_secret: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="urllib3")
    with ThreadPoolExecutor(POOL_SIZE) as pool:
        results = list(pool.map(lambda _: issue(backend, KV).data, range(4 * POOL_SIZE)))

    assert results == [kv_secret] * (4 * POOL_SIZE)
    assert not [r for r in caplog.records if "pool is full" in r.getMessage()]


# -- AppRole, under the broker's own policy -----------------------------------------------------------------


def approle_credentials(vault: OpenBaoServer, *, token_ttl: str = "5m") -> tuple[str, str]:
    client = vault.client()
    vault.write_policy("transom-broker", BROKER_POLICY.read_text())
    vault.enable_auth("approle")
    client.write_data(
        "auth/approle/role/transom-broker",
        data={
            "token_policies": ["transom-broker"],
            "token_no_default_policy": True,  # the HCL file alone must be enough
            "token_ttl": token_ttl,
            "token_max_ttl": "1h",
            "secret_id_num_uses": 0,
        },
    )
    role_id = client.read("auth/approle/role/transom-broker/role-id")["data"]["role_id"]
    secret_id = client.write_data("auth/approle/role/transom-broker/secret-id")["data"]["secret_id"]
    return role_id, secret_id


@pytest.fixture
def approle_backend(vault: OpenBaoServer) -> Iterator[HvacBackend]:
    """The broker's Vault side, logged in by AppRole under config/vault/transom-broker.hcl."""
    role_id, secret_id = approle_credentials(vault)
    with HvacBackend(vault.addr, role_id=role_id, secret_id=secret_id) as b:
        yield b


def revoke_broker_login_tokens(vault: OpenBaoServer) -> int:
    client = vault.client()
    revoked = 0
    for accessor in client.auth.token.list_accessors()["data"]["keys"]:
        meta = client.auth.token.lookup_accessor(accessor)["data"].get("meta") or {}
        if meta.get("role_name") == "transom-broker":
            client.auth.token.revoke_accessor(accessor)
            revoked += 1
    return revoked


def test_approle_broker_runs_token_and_kv_operations_under_its_policy(
    vault: OpenBaoServer, approle_backend: HvacBackend, kv_secret: dict[str, str]
) -> None:
    approle_backend.health()
    assert issue(approle_backend, KV).data == kv_secret

    lease_id = new_lease_id()
    credential = issue(approle_backend, TOKEN, lease_id=lease_id)
    policies = sorted(lookup_self(vault, credential.data["token"])["policies"])
    assert policies == ["default", DEPLOY_PROD_POLICY, TOKEN_GUARD_POLICY]
    assert approle_backend.renew(credential.handle, ttl=timedelta(minutes=3)) == timedelta(minutes=3)
    approle_backend.revoke(credential.handle)
    assert not token_is_alive(vault, credential.data["token"])
    approle_backend.revoke(credential.handle)
    # crash recovery and what the policy refuses: test_broker_policy.py


def test_approle_broker_is_refused_what_its_policy_does_not_grant(
    vault: OpenBaoServer, approle_backend: HvacBackend
) -> None:
    with pytest.raises(VaultRejected) as caught:
        issue(approle_backend, SecretSpec("elsewhere", "kv", mount="cubbyhole", path="anything"))

    assert caught.value.error_class == "forbidden"


@pytest.mark.postgres
def test_approle_broker_runs_dynamic_operations_under_its_policy(
    vault: OpenBaoServer, approle_backend: HvacBackend, postgres: dict[str, Any]
) -> None:
    credential = issue(approle_backend, DYNAMIC)
    assert pg_role(postgres, credential.data["username"]) is not None
    assert approle_backend.renew(credential.handle, ttl=timedelta(minutes=4)) == timedelta(minutes=4)

    approle_backend.revoke(credential.handle)

    assert pg_role(postgres, credential.data["username"]) is None


def test_approle_broker_logs_in_again_when_its_token_is_gone(
    vault: OpenBaoServer, approle_backend: HvacBackend, kv_secret: dict[str, str]
) -> None:
    approle_backend.health()  # logged in
    assert revoke_broker_login_tokens(vault) >= 1

    assert issue(approle_backend, KV).data == kv_secret
    approle_backend.health()


def test_approle_login_refused_is_unavailable(vault: OpenBaoServer) -> None:
    role_id, _ = approle_credentials(vault)
    with (
        HvacBackend(vault.addr, role_id=role_id, secret_id=str(uuid.uuid4())) as approle_backend,
        pytest.raises(VaultUnavailable) as caught,
    ):
        approle_backend.health()

    assert caught.value.error_class == "auth_failed"


def test_the_environment_proxy_settings_are_honoured(
    vault: OpenBaoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """They are read once when the backend is built (not on every call), with the same meaning as before."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead_proxy = f"http://127.0.0.1:{closed.getsockname()[1]}"
    monkeypatch.setenv("HTTP_PROXY", dead_proxy)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with (
        HvacBackend(vault.addr, token=vault.root_token, timeout=2) as proxied,
        pytest.raises(VaultUnavailable),
    ):
        proxied.health()
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with HvacBackend(vault.addr, token=vault.root_token, timeout=2) as direct:
        direct.health()
