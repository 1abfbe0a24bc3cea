"""An issuer whose JWKS endpoint fails (HTTP 500) or hangs: with no usable cached keys a CI request is refused
at once with 503 ``issuer_unavailable`` (fail closed); with cached keys, tokens keep verifying.

The broker's clock is frozen (the issuer stamps tokens with it) so a test can age the key cache without
sleeping. Its key cache fetches with the real HTTP fetcher, with one-second timeouts instead of the default
five, so that a hanging issuer costs each test about a second.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from werkzeug.test import TestResponse

from app import create_app
from app.clock import FrozenClock
from app.identity.jwks import JwksCache
from app.identity.jwks_fetch import HttpFetcher
from tests.integration.conftest import create_broker_token, rt
from tests.integration.faults.fault_checks import leases
from tests.support.broker import Broker
from tests.support.oidc_issuer import JWKS_PATH, OidcIssuer
from tests.support.openbao import OpenBaoServer

KEYS_TTL = timedelta(minutes=10)
KEYS_MAX_STALE = timedelta(hours=1)
FETCH_TIMEOUT = 1.0  # connect and read, each
FETCH_TOTAL = 2.0


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def jwks_app(database_url: str, vault: OpenBaoServer, clock: FrozenClock) -> Iterator[Flask]:
    app = create_app(
        {
            "env": "test",
            "database_url": database_url,
            "vault_addr": vault.addr,
            "vault_token": vault.root_token,
            "allow_insecure_issuers": True,
        },
        clock=clock,
    )
    rt(app).jwks = JwksCache(
        fetch=HttpFetcher(
            connect_timeout=FETCH_TIMEOUT, read_timeout=FETCH_TIMEOUT, total_timeout=FETCH_TOTAL
        ),
        clock=clock,
        ttl=KEYS_TTL,
        refetch_cooldown=timedelta(0),  # every request may try again: recovery shows at once
        max_stale=KEYS_MAX_STALE,
    )
    yield app
    rt(app).engine.dispose()


@pytest.fixture
def issuer(clock: FrozenClock) -> Iterator[OidcIssuer]:
    with OidcIssuer(clock=clock) as oidc:
        yield oidc


@pytest.fixture
def jwks_broker(jwks_app: Flask, issuer: OidcIssuer, vault: OpenBaoServer) -> Broker:
    b = Broker(jwks_app, jwks_app.test_client(), create_broker_token(jwks_app, "admin"), issuer, vault)
    b.register_issuer()
    b.kv_secret()
    b.policy(secrets=["prod-db-static"])
    return b


def assert_issuer_unavailable(response: TestResponse) -> None:
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.headers["Retry-After"]
    assert [r["code"] for r in response.get_json()["reasons"]] == ["issuer_unavailable"]


def timed_lease(broker: Broker) -> tuple[TestResponse, float]:
    started = time.monotonic()
    response = broker.request_lease("prod-db-static")
    return response, time.monotonic() - started


def test_failing_issuer_without_cached_keys_is_503_and_recovers(
    jwks_broker: Broker, issuer: OidcIssuer
) -> None:
    issuer.fail_with(500)
    response, elapsed = timed_lease(jwks_broker)
    assert_issuer_unavailable(response)
    assert elapsed < FETCH_TOTAL
    assert leases(jwks_broker.app) == {}

    issuer.recover()
    assert jwks_broker.request_lease("prod-db-static").status_code == 201


def test_hanging_issuer_without_cached_keys_is_503_within_the_fetch_timeout(
    jwks_broker: Broker, issuer: OidcIssuer
) -> None:
    issuer.hang(30)
    response, elapsed = timed_lease(jwks_broker)
    assert_issuer_unavailable(response)
    assert elapsed < FETCH_TOTAL + 1  # the fetcher gave up, not the issuer
    assert leases(jwks_broker.app) == {}

    issuer.recover()
    assert jwks_broker.request_lease("prod-db-static").status_code == 201


def test_cached_keys_keep_verifying_while_the_issuer_fails(
    jwks_broker: Broker, issuer: OidcIssuer, clock: FrozenClock
) -> None:
    assert jwks_broker.request_lease("prod-db-static").status_code == 201  # the keys are fetched and cached
    fetched = issuer.count(JWKS_PATH)
    issuer.fail_with(500)

    assert jwks_broker.request_lease("prod-db-static").status_code == 201
    assert issuer.count(JWKS_PATH) == fetched  # a fresh copy: the issuer is not even asked

    clock.advance(KEYS_TTL + timedelta(minutes=1))
    assert jwks_broker.request_lease("prod-db-static").status_code == 201  # stale, but still usable
    assert issuer.count(JWKS_PATH) == fetched  # the refetch failed at discovery, before the JWKS

    clock.advance(KEYS_MAX_STALE)
    assert_issuer_unavailable(jwks_broker.request_lease("prod-db-static"))  # too old to trust: fail closed


def test_cached_keys_keep_verifying_while_the_issuer_hangs(
    jwks_broker: Broker, issuer: OidcIssuer, clock: FrozenClock
) -> None:
    assert jwks_broker.request_lease("prod-db-static").status_code == 201
    issuer.hang(30)
    clock.advance(KEYS_TTL + timedelta(minutes=1))
    response, elapsed = timed_lease(jwks_broker)  # this request tries the refetch, then uses the old copy
    assert response.status_code == 201, response.get_json()
    assert elapsed < FETCH_TOTAL + 1
