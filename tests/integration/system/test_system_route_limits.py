"""The unauthenticated system routes cost Vault little and say little (issue 18, "Info"):

- a burst of ``/readyz`` makes at most one Vault health check a second (counted at a wrapper around the real
  backend, talking to the real OpenBao);
- ``/metrics`` names policies, so ``TRANSOM_METRICS_REQUIRE_AUTH`` makes it need a broker token.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask

from app.clock import FrozenClock
from app.metrics import scheduler_metrics
from app.vault.hvac_backend import HvacBackend
from tests.integration.conftest import create_broker_token, make_app, rt
from tests.support.broker import bearer
from tests.support.openbao import OpenBaoServer


class CountingVault:
    """The real backend, counting the health checks that reach OpenBao."""

    def __init__(self, real: HvacBackend) -> None:
        self._real = real
        self.health_checks = 0

    def health(self) -> None:
        self.health_checks += 1
        self._real.health()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 12, 6, 9, 0, tzinfo=UTC))


@pytest.fixture
def counting(vault: OpenBaoServer) -> CountingVault:
    return CountingVault(HvacBackend(vault.addr, token=vault.root_token))


@pytest.fixture
def probed(
    database_url: str, vault: OpenBaoServer, counting: CountingVault, clock: FrozenClock
) -> Iterator[Flask]:
    app = make_app(database_url, vault, vault=counting, clock=clock)  # type: ignore[arg-type]
    yield app
    rt(app).engine.dispose()


def test_a_burst_of_readyz_checks_vault_at_most_once_a_second(
    probed: Flask, counting: CountingVault, clock: FrozenClock
) -> None:
    client = probed.test_client()
    for _ in range(50):
        response = client.get("/readyz")
        assert response.status_code == 200
        assert response.get_json() == {"database": "ok", "vault": "ok"}
        clock.advance(timedelta(milliseconds=10))  # 0.5 s of hammering
    assert counting.health_checks == 1

    clock.advance(timedelta(milliseconds=500))  # a second after the check
    for _ in range(50):
        assert client.get("/readyz").status_code == 200
    assert counting.health_checks == 2


def test_not_ready_is_not_kept_so_recovery_shows_at_once(
    probed: Flask, counting: CountingVault, vault: OpenBaoServer, clock: FrozenClock
) -> None:
    client = probed.test_client()
    vault.stop()
    assert client.get("/readyz").status_code == 503
    vault.start()
    vault.ensure_baseline(None)
    assert client.get("/readyz").status_code == 200  # same instant on the clock: a 503 is not reused
    assert client.get("/readyz").status_code == 200
    assert counting.health_checks == 2


# --- /metrics --------------------------------------------------------------------------------------------


@pytest.fixture
def guarded(database_url: str, openbao: OpenBaoServer) -> Iterator[Flask]:
    app = make_app(database_url, openbao, metrics_require_auth=True)
    yield app
    rt(app).engine.dispose()


@pytest.fixture
def policy_label() -> Iterator[None]:
    scheduler_metrics().set_active_by_policy({"deploy-prod": 1})
    yield
    scheduler_metrics().set_active_by_policy({})  # the registry is the process's: leave it as found


@pytest.mark.usefixtures("policy_label")
def test_metrics_stay_open_by_default(app: Flask) -> None:
    response = app.test_client().get("/metrics")
    assert response.status_code == 200
    assert 'policy="deploy-prod"' in response.get_data(as_text=True)


@pytest.mark.usefixtures("policy_label")
def test_metrics_need_a_broker_token_when_required(guarded: Flask) -> None:
    client = guarded.test_client()
    refused = client.get("/metrics")
    assert refused.status_code == 401
    assert refused.headers["Content-Type"] == "application/problem+json"
    assert "deploy-prod" not in refused.get_data(as_text=True)
    assert client.get("/metrics", headers=bearer("trn_" + "x" * 43)).status_code == 401
    assert client.get("/metrics", headers=bearer("eyJhbGciOiJSUzI1NiJ9.e30.c2ln")).status_code == 403

    scraper = create_broker_token(guarded, "auditor", "scraper")
    served = client.get("/metrics", headers=bearer(scraper))
    assert served.status_code == 200
    assert 'policy="deploy-prod"' in served.get_data(as_text=True)
