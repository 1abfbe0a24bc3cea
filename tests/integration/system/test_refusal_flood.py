"""Finding 3: anyone on GitHub can mint a token for the broker's audience and be refused, over and over.

The attack: an outsider repository sends refused lease requests with fresh tokens in a loop. Refusals count
per client address and per repository and are answered 429 past the limit; a burst of identical refusals is
one ledger event with a count; valid callers behind the same address are still served (docs/API.md,
"Rate limits").
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from werkzeug.test import TestResponse

from app.clock import FrozenClock
from tests.integration.conftest import create_broker_token, make_app, rt
from tests.support.broker import Broker, bearer
from tests.support.oidc_issuer import OidcIssuer
from tests.support.openbao import OpenBaoServer

LIMIT = 5
OUTSIDER = "evil/outsider"
ATTACKER = "203.0.113.9"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def issuer(clock: FrozenClock) -> Iterator[OidcIssuer]:
    with OidcIssuer(clock=clock) as oidc:
        yield oidc


def _broker(
    database_url: str, vault: OpenBaoServer, issuer: OidcIssuer, clock: FrozenClock, **settings: Any
) -> Iterator[Broker]:
    app = make_app(database_url, vault, clock=clock, **settings)
    broker = Broker(app, app.test_client(), create_broker_token(app, "admin"), issuer, vault)
    broker.register_issuer()
    broker.kv_secret()
    broker.policy(secrets=["prod-db-static"])
    yield broker
    rt(app).engine.dispose()


@pytest.fixture
def limited(
    database_url: str, vault: OpenBaoServer, issuer: OidcIssuer, clock: FrozenClock
) -> Iterator[Broker]:
    yield from _broker(database_url, vault, issuer, clock, auth_failures_per_minute=LIMIT)


@pytest.fixture
def unlimited(
    database_url: str, vault: OpenBaoServer, issuer: OidcIssuer, clock: FrozenClock
) -> Iterator[Broker]:
    yield from _broker(database_url, vault, issuer, clock, auth_failures_per_minute=0)


@pytest.fixture
def proxied(
    database_url: str, vault: OpenBaoServer, issuer: OidcIssuer, clock: FrozenClock
) -> Iterator[Broker]:
    yield from _broker(
        database_url, vault, issuer, clock, auth_failures_per_minute=LIMIT, trusted_proxy_hops=1
    )


def _request(broker: Broker, address: str, *, repo: str = OUTSIDER, proxied: bool = False) -> TestResponse:
    """A lease request with a fresh token (same job, new jti), as a curl loop of the attacker sends it."""
    headers = bearer(broker.ci_token(repo=repo))
    environ = {"REMOTE_ADDR": address}
    if proxied:
        headers["X-Forwarded-For"] = address
        environ = {"REMOTE_ADDR": "10.0.0.1"}  # the load balancer
    return broker.client.post(
        "/v1/leases", json={"secret": "prod-db-static"}, headers=headers, environ_base=environ
    )


def _denials(broker: Broker) -> list[dict[str, Any]]:
    response = broker.admin("GET", "/v1/audit/events?action=lease.denied&limit=500")
    assert response.status_code == 200, response.get_json()
    items: list[dict[str, Any]] = response.get_json()["items"]
    return items


def _counted(events: list[dict[str, Any]]) -> int:
    return sum(event["details"]["count"] for event in events)


def test_refusals_past_the_limit_are_429_and_valid_callers_are_still_served(
    limited: Broker, clock: FrozenClock
) -> None:
    answers = [_request(limited, ATTACKER) for _ in range(4 * LIMIT)]
    statuses = [answer.status_code for answer in answers]
    assert statuses == [403] * LIMIT + [429] * (3 * LIMIT)
    held = answers[-1]
    assert held.mimetype == "application/problem+json"
    assert [r["code"] for r in held.get_json()["reasons"]] == ["too_many_failures"]
    assert 1 <= int(held.headers["Retry-After"]) <= 60

    # The same address keeps its valid callers: an admin and a CI job that policy grants.
    admin = limited.client.get(
        "/v1/policies", headers=bearer(limited.admin_token), environ_base={"REMOTE_ADDR": ATTACKER}
    )
    assert admin.status_code == 200
    assert _request(limited, ATTACKER, repo="acme/payments").status_code == 201

    clock.advance(timedelta(seconds=61))  # the burst's window closes; the next request writes its summary
    events = _denials(limited)
    assert len(events) == 2  # not one per refusal
    assert _counted(events) == statuses.count(403)  # 429s are not recorded; every 403 is counted
    assert all(event["repository"] == OUTSIDER for event in events)
    assert _request(limited, ATTACKER).status_code == 403  # a new minute, a new allowance


def test_a_burst_of_identical_refusals_is_one_event_with_a_count(
    unlimited: Broker, clock: FrozenClock
) -> None:
    refused = 30
    assert {_request(unlimited, ATTACKER).status_code for _ in range(refused)} == {403}
    first = _denials(unlimited)
    assert [event["details"]["count"] for event in first] == [1]  # the first is recorded at once

    other = unlimited.request_lease("unknown-secret", unlimited.ci_token(repo=OUTSIDER))
    assert other.status_code == 403  # a different refusal is not part of the burst
    clock.advance(timedelta(seconds=61))
    events = _denials(unlimited)
    assert len(events) == 3
    summary = next(event for event in events if event["details"]["count"] > 1)
    assert summary["details"]["count"] == refused - 1
    assert summary["details"]["first_event"] == first[0]["id"]
    assert summary["details"]["first_at"] and summary["details"]["last_at"]
    assert summary["reasons"] == first[0]["reasons"] and summary["repository"] == OUTSIDER
    assert _counted([e for e in events if e["secret"] == "prod-db-static"]) == refused

    assert _request(unlimited, ATTACKER).status_code == 403  # after the window: a new burst, written at once
    assert len(_denials(unlimited)) == 4
    verified = unlimited.verified_log()
    assert verified["ok"] is True and verified["checked"] == verified["size"] > 0


def test_refusals_of_one_repository_from_many_addresses_hit_the_repository_limit(proxied: Broker) -> None:
    addresses = [f"198.51.100.{n}" for n in range(1, 2 * LIMIT + 1)]
    statuses = [_request(proxied, address, proxied=True).status_code for address in addresses]
    assert statuses == [403] * LIMIT + [429] * LIMIT  # every address is new; the repository is not

    assert _request(proxied, "192.0.2.1", repo="evil/other", proxied=True).status_code == 403
    assert _request(proxied, addresses[-1], repo="acme/payments", proxied=True).status_code == 201
