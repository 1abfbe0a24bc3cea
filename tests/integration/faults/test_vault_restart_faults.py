"""OpenBao stopped and started again under a running broker: issuance, renewal and revocation fail closed with
a clear status, nothing stays active that Vault does not know, and the same broker recovers on its own.

Dev-mode OpenBao comes back empty: the tests put back what they need (``restart``). Credentials issued before
the stop are gone with it, as a token revoked at Vault behind Transom's back would be.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from werkzeug.test import TestResponse

from tests.integration.faults.fault_checks import (
    assert_vault_and_rows_agree,
    leases,
    run_recovery,
    status_of,
    token_works,
)
from tests.support.broker import Broker, bearer
from tests.support.faulty_proxy import FaultyProxy
from tests.support.openbao import OpenBaoServer

PROBLEM = "application/problem+json"


def restart(broker: Broker, kv_values: dict[str, str] | None = None) -> None:
    """Start OpenBao again and put back the setup the broker relies on (dev mode starts empty)."""
    broker.vault.start()
    broker.vault.ensure_baseline(None)
    broker.vault.write_kv(broker.kv_path, kv_values or {"db_password": "after-restart"})


def assert_unavailable(response: TestResponse) -> None:
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.headers["Content-Type"] == PROBLEM
    assert response.headers["Retry-After"]
    body = response.get_json()
    assert body["status"] == 503
    assert [r["code"] for r in body["reasons"]] == ["vault_unavailable"]


def renew(broker: Broker, lease_id: str, **body: Any) -> TestResponse:
    return broker.client.post(f"/v1/leases/{lease_id}/renew", json=body, headers=bearer(broker.ci_token()))


def release(broker: Broker, lease_id: str) -> TestResponse:
    return broker.client.post(f"/v1/leases/{lease_id}/release", headers=bearer(broker.ci_token()))


def test_issuance_fails_closed_while_vault_is_down_and_recovers(broker: Broker, vault: OpenBaoServer) -> None:
    vault.stop()
    for secret in ("prod-db-static", "prod-vault-token"):
        response = broker.request_lease(secret)
        assert_unavailable(response)
        assert "data" not in response.get_json()
    assert broker.client.get("/readyz").status_code == 503
    assert {lease.status for lease in leases(broker.app).values()} == {"failed", "revoking"}  # kv, token

    restart(broker, {"db_password": "fresh"})
    assert broker.client.get("/readyz").status_code == 200
    assert broker.lease("prod-db-static")["data"] == {"db_password": "fresh"}
    token = broker.lease("prod-vault-token")["data"]["token"]
    assert token_works(vault, token)
    run_recovery(broker.app)  # what was left revoking (a token that may have been created) ends
    assert {lease.status for lease in leases(broker.app).values()} == {"failed", "active"}
    assert_vault_and_rows_agree(broker.app, vault)


@pytest.mark.parametrize("operation", ["issue", "renew", "release"])
def test_vault_stopped_while_the_call_is_in_flight(
    proxied_broker: Broker, vault: OpenBaoServer, proxy: FaultyProxy, operation: str
) -> None:
    """The broker's request to Vault is on its way (held by the proxy) when OpenBao stops."""
    broker = proxied_broker
    lease = broker.lease("prod-vault-token", ttl="10m") if operation != "issue" else None
    call = {
        "issue": lambda: broker.request_lease("prod-vault-token"),
        "renew": lambda: renew(broker, lease["id"], ttl="30m"),  # type: ignore[index]
        "release": lambda: release(broker, lease["id"]),  # type: ignore[index]
    }[operation]
    proxy.hold()
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(call)
        proxy.wait_held()
        vault.stop()
        proxy.release()
        response = pending.result(timeout=10)

    if operation == "release":
        assert response.status_code == 202
        assert response.get_json()["status"] == "revoking"
    else:
        assert_unavailable(response)
    if lease is not None and operation == "renew":
        shown = broker.admin("GET", f"/v1/leases/{lease['id']}").get_json()
        assert (shown["status"], shown["expires_at"]) == ("active", lease["expires_at"])
    assert "issuing" not in {row.status for row in leases(broker.app).values()}

    restart(broker)
    fresh = broker.lease("prod-vault-token")
    assert renew(broker, fresh["id"], ttl="30m").status_code == 200
    assert release(broker, fresh["id"]).status_code == 200
    if operation == "renew":  # its token died with dev-mode Vault's memory: the job ends the lease anyway
        assert release(broker, lease["id"]).status_code == 200  # type: ignore[index]
    run_recovery(broker.app)
    if lease is not None:
        assert status_of(broker.app, lease["id"]) == "released"
    assert "revoking" not in {row.status for row in leases(broker.app).values()}
    assert_vault_and_rows_agree(broker.app, vault)


def test_renewal_fails_closed_while_vault_is_down_and_recovers(broker: Broker, vault: OpenBaoServer) -> None:
    before = broker.lease("prod-vault-token", ttl="10m")
    vault.stop()
    response = renew(broker, before["id"], ttl="30m")
    assert_unavailable(response)
    shown = broker.admin("GET", f"/v1/leases/{before['id']}").get_json()
    assert (shown["status"], shown["expires_at"], shown["renewals"]) == ("active", before["expires_at"], 0)
    events = broker.admin("GET", f"/v1/audit/events?lease_id={before['id']}").get_json()["items"]
    assert "lease.renewed" not in [e["action"] for e in events]

    restart(broker)
    # The token issued before the stop died with dev-mode Vault's memory; a new lease renews as usual.
    after = broker.lease("prod-vault-token", ttl="10m")
    renewed = renew(broker, after["id"], ttl="30m")
    assert renewed.status_code == 200, renewed.get_json()
    assert renewed.get_json()["renewals"] == 1
    assert token_works(vault, after["data"]["token"])
    # Ending the lost one works too: Vault no longer knowing a credential counts as revoked.
    assert release(broker, before["id"]).status_code == 200
    assert_vault_and_rows_agree(broker.app, vault)


def test_revocation_while_vault_is_down_is_202_revoking_until_vault_is_back(
    broker: Broker, vault: OpenBaoServer
) -> None:
    released = broker.lease("prod-vault-token")
    revoked = broker.lease("prod-vault-token")
    vault.stop()

    response = release(broker, released["id"])
    assert response.status_code == 202
    assert response.get_json()["status"] == "revoking"
    response = broker.admin("POST", f"/v1/leases/{revoked['id']}/revoke", {"reason": "leak drill"})
    assert response.status_code == 202
    assert response.get_json()["status"] == "revoking"
    run_recovery(broker.app)  # Vault still down: the retries fail and are recorded, nothing is lost
    assert {status_of(broker.app, lease["id"]) for lease in (released, revoked)} == {"revoking"}
    events = broker.admin("GET", f"/v1/audit/events?lease_id={released['id']}").get_json()["items"]
    assert [e["action"] for e in events].count("lease.revoke_failed") == 2  # the request's and the retry's

    restart(broker)
    run_recovery(broker.app)
    assert status_of(broker.app, released["id"]) == "released"
    assert status_of(broker.app, revoked["id"]) == "revoked"
    assert release(broker, released["id"]).status_code == 409
    assert_vault_and_rows_agree(broker.app, vault)
