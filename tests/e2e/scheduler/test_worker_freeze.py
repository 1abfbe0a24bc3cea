"""A freeze scheduled to start in two seconds: the worker revokes the leases it covers when it starts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from app.instants import format_instant, parse_instant
from app.runtime import runtime_of
from tests.e2e.scheduler.conftest import StartWorker
from tests.e2e.scheduler.worker_processes import wait_until
from tests.integration.conftest import create_broker_token, make_app
from tests.integration.scheduler.lease_seeding import token_works
from tests.support.broker import Broker
from tests.support.oidc_issuer import OidcIssuer
from tests.support.openbao import OpenBaoServer

pytestmark = pytest.mark.postgres


@pytest.fixture
def broker(postgres_url: str, vault: OpenBaoServer) -> Iterator[Broker]:
    """The API in this process (the worker is another), on the worker's database."""
    app = make_app(postgres_url, vault)
    with OidcIssuer() as issuer:
        yield Broker.configured(app, create_broker_token(app, "admin", "e2e-admin"), issuer, vault)
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
