"""PostgreSQL connections of the broker killed (``pg_terminate_backend``) at known points inside a request.

The point is made deterministic with a lock: a connection of the test's own holds a row the request needs,
the request waits for it inside its transaction, and the test kills the waiting backend. The request must
answer a clear 503 problem, leave no credential at Vault that no row knows, and the next request must work
(the pool replaces dead pooled connections at checkout: ``app.db``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from flask import Flask
from werkzeug.test import TestResponse

from tests.integration.conftest import create_broker_token, make_app, rt
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
from tests.support.oidc_issuer import OidcIssuer
from tests.support.openbao import OpenBaoServer

pytestmark = pytest.mark.postgres


def _dbname(url: str) -> str:
    return url.rsplit("/", 1)[1]


class Backends:
    """The broker's server processes on the test database, seen and ended from a maintenance connection."""

    def __init__(self, postgres: dict[str, Any], url: str) -> None:
        self.params = {**postgres, "dbname": _dbname(url)}
        self.dbname = _dbname(url)
        self._admin = psycopg.connect(**{**postgres, "dbname": "postgres"}, autocommit=True)

    def lock(self, sql: str, *args: Any) -> psycopg.Connection[Any]:
        """A connection of the test's own, holding the row locks of ``sql`` until it rolls back."""
        holder = psycopg.connect(**self.params)
        holder.execute(sql, args)
        return holder

    def pids(self, *, exclude: tuple[int, ...] = ()) -> list[int]:
        rows = self._admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> ALL(%s)",
            (self.dbname, list(exclude)),
        ).fetchall()
        return [row[0] for row in rows]

    def waiting_for_a_lock(self, timeout: float = 10.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            row = self._admin.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'",
                (self.dbname,),
            ).fetchone()
            if row is not None:
                return int(row[0])
            time.sleep(0.02)
        raise AssertionError("no broker connection came to wait for the lock")

    def terminate(self, pids: list[int]) -> None:
        for pid in pids:
            self._admin.execute("SELECT pg_terminate_backend(%s)", (pid,))

    def close(self) -> None:
        self._admin.close()


@pytest.fixture
def pg_broker(postgres_url: str, vault: OpenBaoServer, oidc_issuer: OidcIssuer) -> Iterator[Broker]:
    app = make_app(postgres_url, vault)
    b = Broker(app, app.test_client(), create_broker_token(app, "admin"), oidc_issuer, vault)
    b.register_issuer()
    b.kv_secret()
    b.token_secret()
    b.policy()
    yield b
    rt(app).engine.dispose()


@pytest.fixture
def backends(postgres: dict[str, Any], postgres_url: str) -> Iterator[Backends]:
    seen = Backends(postgres, postgres_url)
    yield seen
    seen.close()


def in_background(app: Flask, method: str, path: str, token: str, body: Any = None) -> Any:
    """Start one request on a thread of its own (with its own test client); ``.result()`` is its response."""
    pool = ThreadPoolExecutor(1)
    future = pool.submit(
        lambda: app.test_client().open(path, method=method, json=body, headers=bearer(token))
    )
    pool.shutdown(wait=False)
    return future


def assert_database_unavailable(response: TestResponse) -> None:
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.headers["Retry-After"]
    text = response.get_data(as_text=True)
    assert "psycopg" not in text and "SELECT" not in text and "Traceback" not in text


def test_connection_killed_inside_a_release_is_503_and_changes_nothing(
    pg_broker: Broker, vault: OpenBaoServer, backends: Backends
) -> None:
    broker = pg_broker
    lease = broker.lease("prod-vault-token")
    holder = backends.lock("SELECT id FROM leases WHERE id = %s FOR UPDATE", lease["id"])
    try:
        pending = in_background(broker.app, "POST", f"/v1/leases/{lease['id']}/release", broker.ci_token())
        backends.terminate([backends.waiting_for_a_lock()])
        response = pending.result(timeout=10)
    finally:
        holder.rollback()
        holder.close()

    assert_database_unavailable(response)
    body = response.get_json()
    assert (body["type"].rsplit("/", 1)[1], [r["code"] for r in body["reasons"]]) == (
        "database-unavailable",
        ["database_unavailable"],
    )
    assert status_of(broker.app, lease["id"]) == "active"
    assert token_works(vault, lease["data"]["token"])  # the credential is still known, alive and owned
    assert_vault_and_rows_agree(broker.app, vault)

    again = broker.client.post(f"/v1/leases/{lease['id']}/release", headers=bearer(broker.ci_token()))
    assert again.status_code == 200
    assert not token_works(vault, lease["data"]["token"])


def test_connection_killed_after_vault_issued_revokes_the_credential(
    pg_broker: Broker, vault: OpenBaoServer, backends: Backends
) -> None:
    """Killed while recording the grant (waiting for the configuration generation row, which an admin's
    change holds): Vault has already issued, so the broker takes the token back at once and answers 503; the
    write-ahead row stays ``issuing`` until the scheduler's recovery ends it."""
    broker = pg_broker
    holder = backends.lock("SELECT generation FROM config_generation WHERE id = 1 FOR UPDATE")
    try:
        pending = in_background(
            broker.app, "POST", "/v1/leases", broker.ci_token(), {"secret": "prod-vault-token"}
        )
        backends.terminate([backends.waiting_for_a_lock()])
        response = pending.result(timeout=10)
    finally:
        holder.rollback()
        holder.close()

    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.headers["Content-Type"] == "application/problem+json"
    assert "data" not in response.get_json()
    (lease,) = leases(broker.app).values()
    assert lease.status == "issuing"
    assert lease.id not in vault_tokens_by_lease(vault)  # revoked before the answer
    assert_vault_and_rows_agree(broker.app, vault)

    created = broker.request_lease("prod-vault-token")  # the pool replaced the dead connection
    assert created.status_code == 201
    run_recovery(broker.app)
    assert status_of(broker.app, lease.id) == "failed"
    assert_vault_and_rows_agree(broker.app, vault)


def test_connections_killed_while_the_vault_call_is_in_flight_cost_nothing(
    postgres_url: str, vault: OpenBaoServer, oidc_issuer: OidcIssuer, backends: Backends
) -> None:
    """No transaction is held across a Vault call: killing every connection of the broker meanwhile only
    kills idle pooled ones, which the pool replaces at checkout, and the lease is granted as usual."""
    with FaultyProxy(vault.port) as proxy:
        app = make_app(postgres_url, vault, vault_addr=proxy.addr)
        try:
            broker = Broker(app, app.test_client(), create_broker_token(app, "admin"), oidc_issuer, vault)
            broker.register_issuer()
            broker.token_secret()
            broker.policy(secrets=["prod-vault-token"])
            proxy.hold()
            pending = in_background(
                app, "POST", "/v1/leases", broker.ci_token(), {"secret": "prod-vault-token"}
            )
            proxy.wait_held()
            killed = backends.pids()
            backends.terminate(killed)
            proxy.release()
            response = pending.result(timeout=10)

            assert killed  # the pool held connections, and they died
            assert response.status_code == 201, response.get_data(as_text=True)
            assert token_works(vault, response.get_json()["data"]["token"])
            assert_vault_and_rows_agree(app, vault)
        finally:
            proxy.forward()
            rt(app).engine.dispose()


def test_database_down_is_503_for_every_caller(broker_offline: Flask, oidc_issuer: OidcIssuer) -> None:
    client = broker_offline.test_client()
    for path, token in (("/v1/issuers", "trn_" + "x" * 40), ("/v1/leases/lse_x", oidc_issuer.mint())):
        assert_database_unavailable(client.get(path, headers=bearer(token)))
    assert_database_unavailable(
        client.post("/v1/leases", json={"secret": "prod-db"}, headers=bearer(oidc_issuer.mint()))
    )


@pytest.fixture
def broker_offline(vault: OpenBaoServer) -> Iterator[Flask]:
    app = make_app("postgresql+psycopg://postgres@127.0.0.1:1/none", vault)
    yield app
    rt(app).engine.dispose()
