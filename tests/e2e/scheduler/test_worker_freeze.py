"""A freeze scheduled to start in two seconds: the worker revokes the leases it covers when it starts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask

from app import create_app
from app.audit.ledger import Actor, Ledger
from app.clock import SystemClock
from app.db import transaction
from app.instants import format_instant, parse_instant
from app.tokens.service import TokenService
from tests.e2e.scheduler.conftest import StartWorker
from tests.e2e.scheduler.worker_processes import wait_until
from tests.integration.scheduler.lease_seeding import runtime_of, token_works
from tests.support.broker import Broker
from tests.support.oidc_issuer import OidcIssuer
from tests.support.openbao import OpenBaoServer

pytestmark = pytest.mark.postgres


@pytest.fixture
def broker(postgres_url: str, vault: OpenBaoServer) -> Iterator[Broker]:
    """The API in this process (the worker is another), on the worker's database."""
    app: Flask = create_app(
        {
            "env": "test",
            "database_url": postgres_url,
            "vault_addr": vault.addr,
            "vault_token": vault.root_token,
            "allow_insecure_issuers": True,
        }
    )
    clock = SystemClock()
    with transaction(runtime_of(app).sessions) as session:
        admin = TokenService(session, clock, Ledger(session, clock)).create_token(
            "e2e-admin", "admin", None, actor=Actor("system", "tests")
        )
    with OidcIssuer() as issuer:
        b = Broker(app, app.test_client(), admin.token, issuer, vault)
        b.register_issuer()
        b.kv_secret()
        b.token_secret()
        b.policy()
        yield b
    runtime_of(app).engine.dispose()


def test_a_freeze_starting_in_two_seconds_revokes_the_leases_it_covers_when_it_starts(
    broker: Broker, vault: OpenBaoServer, start_worker: StartWorker
) -> None:
    worker = start_worker()
    worker.wait_for_log("sweeper started")
    lease = broker.lease("prod-vault-token", ttl="10m")
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
    broker.create(
        "/v1/freezes",
        {
            "name": "release-freeze",
            "schedule": {
                "type": "once",
                "start": format_instant(start),
                "end": format_instant(start + timedelta(hours=1)),
            },
            "policies": ["deploy-prod"],
            "reason": "release day",
        },
    )
    assert broker.admin("GET", f"/v1/leases/{lease['id']}").get_json()["status"] == "active"

    def shown() -> dict[str, str]:
        body: dict[str, str] = broker.admin("GET", f"/v1/leases/{lease['id']}").get_json()
        return body

    assert wait_until(lambda: shown()["status"] != "active", timeout=8)
    assert datetime.now(UTC) >= start
    assert wait_until(lambda: shown()["status"] == "revoked", timeout=3)
    assert shown()["end_reason"] == "freeze"
    ended_at = parse_instant(shown()["ended_at"])
    assert start <= ended_at < start + timedelta(seconds=2)
    assert not token_works(vault, lease["data"]["token"])
    assert worker.stop() == 0
    assert worker.errors() == []
