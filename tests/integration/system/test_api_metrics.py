"""What the API's /metrics says about its answers and dependencies, as the alert rules read it
(config/prometheus/transom-rules.yml): a denied lease, a client held back, Vault unready."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families

from app.clock import FrozenClock
from tests.integration.conftest import create_broker_token, make_app, rt
from tests.support.broker import Broker, bearer
from tests.support.oidc_issuer import OidcIssuer
from tests.support.openbao import OpenBaoServer

LIMIT = 3


@pytest.fixture
def limited(database_url: str, vault: OpenBaoServer) -> Iterator[Flask]:
    app = make_app(database_url, vault, auth_failures_per_minute=LIMIT)
    yield app
    rt(app).engine.dispose()


def _samples(app: Flask) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = app.test_client().get("/metrics").get_data(as_text=True)
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _responses(app: Flask, route: str, method: str, status: int) -> float:
    labels = frozenset({"route": route, "method": method, "status": str(status)}.items())
    return _samples(app).get(("transom_http_responses_total", labels), 0.0)


def test_denied_leases_and_held_back_clients_are_counted_by_route_and_status(
    limited: Flask, oidc_issuer: OidcIssuer, vault: OpenBaoServer
) -> None:
    broker = Broker.configured(limited, create_broker_token(limited, "admin"), oidc_issuer, vault)
    denied_before = _responses(limited, "/v1/leases", "POST", 403)
    held_before = _responses(limited, "/v1/policies", "GET", 429)

    outsider = broker.ci_token(repo="acme/other")
    assert broker.request_lease("prod-db-static", token=outsider).status_code == 403
    client = limited.test_client()
    statuses = [client.get("/v1/policies", headers=bearer("trn_wrong")).status_code for _ in range(LIMIT + 2)]
    assert statuses[-2:] == [429, 429]  # the refused lease request counted against this address too

    assert _responses(limited, "/v1/leases", "POST", 403) == denied_before + 1
    assert _responses(limited, "/v1/policies", "GET", 429) == held_before + statuses.count(429)
    duration = (
        "transom_http_request_duration_seconds_count",
        frozenset({"route": "/v1/leases", "method": "POST"}.items()),
    )
    assert _samples(limited)[duration] >= 1


def test_readyz_reports_each_dependency_as_a_gauge(database_url: str, vault: OpenBaoServer) -> None:
    clock = FrozenClock(datetime.now(UTC))
    app = make_app(database_url, vault, clock=clock)
    client = app.test_client()
    assert client.get("/readyz").status_code == 200
    assert _dependency_up(app) == {"database": 1, "vault": 1}

    vault.seal()  # answers 503: not ready
    try:
        clock.advance(timedelta(seconds=2))  # past the second /readyz reuses a "ready" answer for
        assert client.get("/readyz").status_code == 503
        assert _dependency_up(app) == {"database": 1, "vault": 0}
    finally:
        vault.unseal()
        rt(app).engine.dispose()


def _dependency_up(app: Flask) -> dict[str, float]:
    samples = _samples(app)
    return {
        name: samples[("transom_dependency_up", frozenset({"dependency": name}.items()))]
        for name in ("database", "vault")
    }
