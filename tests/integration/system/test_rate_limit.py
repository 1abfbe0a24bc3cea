"""A client that keeps failing to authenticate is held back (429, Retry-After); a valid credential is not."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app.clock import FrozenClock
from tests.integration.conftest import create_broker_token, make_app, rt
from tests.support.openbao import OpenBaoServer

LIMIT = 5
ATTACKER = {"REMOTE_ADDR": "203.0.113.9"}
NEIGHBOUR = {"REMOTE_ADDR": "198.51.100.7"}


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 12, 1, 8, 0, tzinfo=UTC))


def _app(database_url: str, openbao: OpenBaoServer, clock: FrozenClock, **settings: object) -> Flask:
    return make_app(database_url, openbao, clock=clock, auth_failures_per_minute=LIMIT, **settings)


@pytest.fixture
def limited(database_url: str, openbao: OpenBaoServer, clock: FrozenClock) -> Iterator[Flask]:
    app = _app(database_url, openbao, clock)
    yield app
    rt(app).engine.dispose()


def _fail_once(client: FlaskClient, environ: dict[str, str]) -> TestResponse:
    headers = {"Authorization": "Bearer trn_not-a-real-token"}
    return client.get("/v1/policies", headers=headers, environ_base=environ)


def _fail(client: FlaskClient, times: int, environ: dict[str, str]) -> list[int]:
    return [_fail_once(client, environ).status_code for _ in range(times)]


def test_failures_past_the_limit_are_429_with_a_reason(limited: Flask, clock: FrozenClock) -> None:
    client = limited.test_client()
    assert _fail(client, LIMIT, ATTACKER) == [401] * LIMIT

    held = _fail_once(client, ATTACKER)
    assert held.status_code == 429
    assert held.mimetype == "application/problem+json"
    body = held.get_json()
    assert [r["code"] for r in body["reasons"]] == ["too_many_failures"]
    assert 1 <= int(held.headers["Retry-After"]) <= 60
    assert held.headers["X-Request-Id"]

    assert _fail(client, 1, NEIGHBOUR) == [401]
    assert client.get("/healthz", environ_base=ATTACKER).status_code == 200

    clock.advance(timedelta(seconds=61))
    assert _fail(client, 1, ATTACKER) == [401]


def test_a_valid_credential_is_served_from_an_address_past_the_limit(
    database_url: str, openbao: OpenBaoServer, clock: FrozenClock
) -> None:
    """Finding 10: CI runners share NAT addresses; one broken job's 60 bad tokens must not lock out the
    admin (or any valid caller) behind the same address."""
    app = make_app(database_url, openbao, clock=clock, auth_failures_per_minute=60)
    client = app.test_client()
    admin = {"Authorization": f"Bearer {create_broker_token(app, 'admin')}"}
    assert _fail(client, 60, ATTACKER) == [401] * 60
    assert _fail_once(client, ATTACKER).status_code == 429

    assert client.get("/v1/policies", headers=admin, environ_base=ATTACKER).status_code == 200
    assert _fail_once(client, ATTACKER).status_code == 429  # still held back: only valid callers pass
    rt(app).engine.dispose()


def test_successes_are_not_counted(limited: Flask) -> None:
    client = limited.test_client()
    admin = {"Authorization": f"Bearer {create_broker_token(limited, 'admin')}"}
    for _ in range(LIMIT * 3):
        assert client.get("/v1/policies", headers=admin, environ_base=ATTACKER).status_code == 200
    assert _fail(client, LIMIT - 1, ATTACKER) == [401] * (LIMIT - 1)
    assert client.get("/v1/policies", headers=admin, environ_base=ATTACKER).status_code == 200


def test_behind_a_trusted_proxy_the_forwarded_address_is_the_client(
    database_url: str, openbao: OpenBaoServer, clock: FrozenClock
) -> None:
    app = _app(database_url, openbao, clock, trusted_proxy_hops=1)
    client = app.test_client()
    proxy = {"REMOTE_ADDR": "10.0.0.1"}
    bad = {"Authorization": "Bearer trn_not-a-real-token"}
    for _ in range(LIMIT):
        client.get(
            "/v1/policies", headers={**bad, "X-Forwarded-For": ATTACKER["REMOTE_ADDR"]}, environ_base=proxy
        )
    neighbour = {**bad, "X-Forwarded-For": NEIGHBOUR["REMOTE_ADDR"]}
    assert client.get("/v1/policies", headers=neighbour, environ_base=proxy).status_code == 401
    attacker = {**bad, "X-Forwarded-For": ATTACKER["REMOTE_ADDR"]}
    assert client.get("/v1/policies", headers=attacker, environ_base=proxy).status_code == 429
    rt(app).engine.dispose()


def test_the_openapi_document_names_the_429(limited: Flask) -> None:
    spec = limited.test_client().get("/openapi.json").get_json()
    assert "429" in spec["paths"]["/v1/leases"]["post"]["responses"]
