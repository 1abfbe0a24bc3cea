"""Fail closed when Vault is down; and no secret value ever lands where it should not."""

from __future__ import annotations

import logging
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import select

from app.leases.models import Lease
from tests.integration.conftest import make_app, rt
from tests.support.broker import Broker, bearer
from tests.support.openbao import OpenBaoServer


def test_vault_down_means_503_nothing_active_and_not_ready(broker: Broker, vault: OpenBaoServer) -> None:
    vault.stop()
    response = broker.request_lease("prod-vault-token")
    assert response.status_code == 503
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.headers["Retry-After"]
    assert broker.client.get("/readyz").status_code == 503
    assert broker.client.get("/readyz").get_json()["vault"] == "unavailable"
    with rt(broker.app).sessions() as session:
        statuses = set(session.scalars(select(Lease.status)))
    assert "active" not in statuses and "issuing" not in statuses

    vault.start()
    vault.ensure_baseline(None)
    assert broker.client.get("/readyz").status_code == 200
    assert broker.request_lease("prod-vault-token").status_code == 201


def test_release_while_vault_is_down_is_202_revoking(broker: Broker, vault: OpenBaoServer) -> None:
    lease = broker.lease("prod-vault-token")
    vault.stop()
    response = broker.client.post(f"/v1/leases/{lease['id']}/release", headers=bearer(broker.ci_token()))
    assert response.status_code == 202
    assert response.get_json()["status"] == "revoking"
    events = broker.admin("GET", f"/v1/leases/{lease['id']}").get_json()
    assert events["status"] == "revoking"


def test_database_down_is_503_not_a_stack_trace(broker: Broker) -> None:
    broken = make_app("postgresql+psycopg://postgres@127.0.0.1:1/none", broker.vault)
    client = broken.test_client()
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.get_json()["database"] == "unavailable"
    response = client.post("/v1/leases", json={"secret": "x"}, headers=bearer(broker.ci_token()))
    assert response.status_code in (500, 503)
    assert "Traceback" not in response.get_data(as_text=True)
    assert "psycopg" not in response.get_data(as_text=True)
    rt(broken).engine.dispose()


@pytest.mark.postgres
def test_canary_secret_values_never_leave_the_issuing_response(
    broker: Broker, vault: OpenBaoServer, postgres: dict[str, object], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    vault.ensure_baseline(postgres)
    broker.create("/v1/secrets", {"name": "prod-db", "kind": "dynamic", "path": "database/creds/deployer"})
    broker.admin(
        "PUT",
        "/v1/policies/deploy-prod",
        {
            "name": "deploy-prod",
            "issuer": "github",
            "secrets": ["prod-db-static", "prod-vault-token", "prod-db"],
            "repositories": ["acme/payments"],
            "branches": ["main"],
            "windows": ["always"],
            "max_ttl": "1h",
        },
    )
    issued = [broker.lease(secret) for secret in ("prod-db-static", "prod-vault-token", "prod-db")]
    # Everything handed out is a secret, except the token's accessor, which Transom keeps to revoke it.
    canaries = {str(v) for lease in issued for k, v in lease["data"].items() if k != "accessor"}
    assert len(canaries) >= 5  # kv values, the token, database username and password
    username = issued[2]["data"]["username"]
    with psycopg.connect(**postgres, autocommit=True) as conn:  # type: ignore[arg-type]
        assert conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (username,)).fetchone()

    seen: list[str] = []
    for lease in issued:
        seen.append(broker.admin("GET", f"/v1/leases/{lease['id']}").get_data(as_text=True))
        renewed = broker.client.post(
            f"/v1/leases/{lease['id']}/renew", json={}, headers=bearer(broker.ci_token())
        )
        seen.append(renewed.get_data(as_text=True))
        released = broker.client.post(f"/v1/leases/{lease['id']}/release", headers=bearer(broker.ci_token()))
        assert released.status_code == 200
        seen.append(released.get_data(as_text=True))
    for path in ("/v1/leases", "/v1/leases?format=csv", "/v1/leases?format=jsonl", "/metrics"):
        seen.append(broker.admin("GET", path).get_data(as_text=True))
    seen.append(caplog.text)
    seen.append(_database_dump(broker))

    leaked = [c for c in canaries if any(c in text for text in seen)]
    assert leaked == []
    with psycopg.connect(**postgres, autocommit=True) as conn:  # type: ignore[arg-type]
        assert conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (username,)).fetchone() is None


def _database_dump(broker: Broker) -> str:
    url = rt(broker.app).settings.database_url
    if url.startswith("sqlite:///"):
        return Path(url.removeprefix("sqlite:///")).read_bytes().decode("utf-8", "replace")
    engine = rt(broker.app).engine
    rows = []
    with engine.connect() as connection:
        for table in ("leases", "audit_events", "seen_tokens", "secrets", "policies"):
            rows.extend(str(r) for r in connection.exec_driver_sql(f"SELECT * FROM {table}"))
    return "\n".join(rows)
