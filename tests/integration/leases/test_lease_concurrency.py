"""Races on PostgreSQL through real HTTP: parallel issuance, parallel replays of one token, max_active."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from sqlalchemy import func, select

from app.audit.models import AuditEvent
from app.leases.models import Lease
from tests.integration.conftest import create_broker_token, make_app, rt
from tests.support.broker import Broker, bearer
from tests.support.ledger import settle_and_verify
from tests.support.oidc_issuer import OidcIssuer
from tests.support.openbao import OpenBaoServer
from tests.support.server import serving

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_broker(
    postgres_url: str, vault: OpenBaoServer, oidc_issuer: OidcIssuer
) -> Iterator[tuple[Broker, str]]:
    app = make_app(postgres_url, vault)
    b = Broker(app, app.test_client(), create_broker_token(app, "admin"), oidc_issuer, vault)
    b.register_issuer()
    b.kv_secret()
    b.token_secret()
    b.policy()
    with serving(app) as url:
        yield b, url
    rt(app).engine.dispose()


def _post(url: str, token: str, body: dict[str, Any]) -> int:
    with requests.Session() as http:
        return http.post(f"{url}/v1/leases", json=body, headers=bearer(token), timeout=60).status_code


def _count(broker: Broker, model: Any, *where: Any) -> int:
    with rt(broker.app).sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def test_200_parallel_issuances_give_200_leases_and_200_grant_events(pg_broker: tuple[Broker, str]) -> None:
    broker, url = pg_broker
    tokens = [broker.ci_token(run_id=str(10_000 + i)) for i in range(200)]
    with ThreadPoolExecutor(16) as pool:
        statuses = Counter(pool.map(lambda t: _post(url, t, {"secret": "prod-db-static"}), tokens))
    assert statuses == {201: 200}
    assert _count(broker, Lease, Lease.status == "active") == 200
    assert _count(broker, AuditEvent, AuditEvent.action == "lease.granted") == 200
    runtime = rt(broker.app)
    verified = settle_and_verify(runtime.sessions, runtime.ledger_signer)
    assert verified.ok and verified.checked >= 200


def test_50_parallel_uses_of_one_token_give_exactly_one_lease(pg_broker: tuple[Broker, str]) -> None:
    broker, url = pg_broker
    token = broker.ci_token()
    with ThreadPoolExecutor(16) as pool:
        statuses = Counter(pool.map(lambda _: _post(url, token, {"secret": "prod-vault-token"}), range(50)))
    assert statuses == {201: 1, 401: 49}
    assert _count(broker, Lease, Lease.status == "active") == 1


def test_max_active_holds_under_parallel_requests(pg_broker: tuple[Broker, str]) -> None:
    broker, url = pg_broker
    policy = {
        "name": "deploy-prod",
        "issuer": "github",
        "secrets": ["prod-db-static", "prod-vault-token"],
        "repositories": ["acme/payments"],
        "branches": ["main"],
        "windows": ["always"],
        "max_ttl": "1h",
        "max_active": 5,
    }
    assert broker.admin("PUT", "/v1/policies/deploy-prod", policy).status_code == 200
    tokens = [broker.ci_token(run_id=str(20_000 + i)) for i in range(20)]
    with ThreadPoolExecutor(20) as pool:
        statuses = Counter(pool.map(lambda t: _post(url, t, {"secret": "prod-db-static"}), tokens))
    assert statuses == {201: 5, 403: 15}
    assert _count(broker, Lease, Lease.status == "active") == 5
