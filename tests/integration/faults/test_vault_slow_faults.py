"""OpenBao slow or rude behind a loopback proxy, with the broker's Vault timeout at one second: a call that
takes longer, or a connection that is reset, is a 503 (202 for a release) and leaves nothing active; once
Vault behaves again, the same broker works and the scheduler cleans up what the faults left behind."""

from __future__ import annotations

import time

from werkzeug.test import TestResponse

from tests.integration.faults.conftest import VAULT_TIMEOUT_SECONDS
from tests.integration.faults.fault_checks import (
    assert_vault_and_rows_agree,
    leases,
    run_recovery,
    status_of,
    token_works,
    vault_tokens_by_lease,
)
from tests.support.broker import Broker, bearer
from tests.support.faulty_proxy import FaultyProxy
from tests.support.openbao import OpenBaoServer

SLOW = 3 * VAULT_TIMEOUT_SECONDS  # well beyond the timeout; a mode change cuts the wait short at the end


def timed(call: object) -> tuple[TestResponse, float]:
    started = time.monotonic()
    response = call()  # type: ignore[operator]
    return response, time.monotonic() - started


def assert_vault_unavailable(response: TestResponse, error_class: str) -> None:
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.headers["Content-Type"] == "application/problem+json"
    body = response.get_json()
    assert [r["code"] for r in body["reasons"]] == ["vault_unavailable"]
    assert f"({error_class})" in body["detail"]
    assert "data" not in body


def test_an_answer_slower_than_the_timeout_is_503_and_the_late_token_is_revoked(
    proxied_broker: Broker, vault: OpenBaoServer, proxy: FaultyProxy
) -> None:
    """Vault creates the token, its answer never arrives in time: the write-ahead row (named in the token's
    metadata) is how the scheduler finds and revokes it."""
    broker = proxied_broker
    proxy.delay(SLOW, where="response")
    response, elapsed = timed(lambda: broker.request_lease("prod-vault-token"))
    assert_vault_unavailable(response, "timeout")
    assert elapsed < SLOW
    (lease,) = leases(broker.app).values()
    assert lease.status == "revoking"  # the broker does not know whether Vault issued: it revokes to be sure
    assert lease.id in vault_tokens_by_lease(vault)  # and Vault did issue

    proxy.forward()
    run_recovery(broker.app)
    assert status_of(broker.app, lease.id) == "failed"
    assert lease.id not in vault_tokens_by_lease(vault)
    assert broker.request_lease("prod-vault-token").status_code == 201
    assert_vault_and_rows_agree(broker.app, vault)


def test_a_request_slower_than_the_timeout_is_503_for_every_kind(
    proxied_broker: Broker, vault: OpenBaoServer, proxy: FaultyProxy
) -> None:
    broker = proxied_broker
    proxy.delay(SLOW, where="request")
    for secret in ("prod-db-static", "prod-vault-token"):
        response, elapsed = timed(lambda secret=secret: broker.request_lease(secret))
        assert_vault_unavailable(response, "timeout")
        assert elapsed < SLOW
    assert "active" not in {lease.status for lease in leases(broker.app).values()}
    assert broker.client.get("/readyz").get_json()["vault"] == "unavailable"

    proxy.forward()
    assert broker.client.get("/readyz").status_code == 200
    assert broker.lease("prod-db-static")["status"] == "active"
    assert token_works(vault, broker.lease("prod-vault-token")["data"]["token"])
    run_recovery(broker.app)
    assert_vault_and_rows_agree(broker.app, vault)


def test_reset_connections_are_503_and_the_broker_recovers(
    proxied_broker: Broker, vault: OpenBaoServer, proxy: FaultyProxy
) -> None:
    broker = proxied_broker
    lease = broker.lease("prod-vault-token")  # a pooled connection to Vault exists: it is reset as well
    proxy.reset()
    for secret in ("prod-db-static", "prod-vault-token"):
        assert_vault_unavailable(broker.request_lease(secret), "connection_error")
    renewed = broker.client.post(
        f"/v1/leases/{lease['id']}/renew", json={"ttl": "30m"}, headers=bearer(broker.ci_token())
    )
    assert_vault_unavailable(renewed, "connection_error")
    assert broker.client.get("/readyz").status_code == 503

    proxy.forward()
    assert broker.client.get("/readyz").status_code == 200
    assert broker.request_lease("prod-vault-token").status_code == 201
    renewed = broker.client.post(
        f"/v1/leases/{lease['id']}/renew", json={"ttl": "30m"}, headers=bearer(broker.ci_token())
    )
    assert renewed.status_code == 200
    assert renewed.get_json()["renewals"] == 1
    run_recovery(broker.app)
    assert_vault_and_rows_agree(broker.app, vault)


def test_a_slow_renewal_changes_nothing(
    proxied_broker: Broker, vault: OpenBaoServer, proxy: FaultyProxy
) -> None:
    broker = proxied_broker
    lease = broker.lease("prod-vault-token", ttl="10m")
    proxy.delay(SLOW, where="request")
    response = broker.client.post(
        f"/v1/leases/{lease['id']}/renew", json={"ttl": "30m"}, headers=bearer(broker.ci_token())
    )
    assert_vault_unavailable(response, "timeout")
    shown = broker.admin("GET", f"/v1/leases/{lease['id']}").get_json()
    assert (shown["status"], shown["expires_at"], shown["renewals"]) == ("active", lease["expires_at"], 0)
    assert_vault_and_rows_agree(broker.app, vault)


def test_a_slow_release_is_202_and_the_scheduler_finishes_it(
    proxied_broker: Broker, vault: OpenBaoServer, proxy: FaultyProxy
) -> None:
    broker = proxied_broker
    lease = broker.lease("prod-vault-token")
    proxy.reset()  # Vault never hears of this revocation
    response = broker.client.post(f"/v1/leases/{lease['id']}/release", headers=bearer(broker.ci_token()))
    assert response.status_code == 202
    assert response.get_json()["status"] == "revoking"
    assert token_works(vault, lease["data"]["token"])  # until Vault confirms, the lease is not called ended

    response = broker.admin("POST", f"/v1/leases/{lease['id']}/revoke", {"reason": "too slow"})
    assert response.status_code == 409  # it is ending already; the admin is told, nothing is lost

    proxy.forward()
    run_recovery(broker.app)
    assert status_of(broker.app, lease["id"]) == "released"
    assert not token_works(vault, lease["data"]["token"])
    assert_vault_and_rows_agree(broker.app, vault)
