"""What the fuzzer found, pinned: each case answered a 500 or an answer that broke the API's own contract.

- A NUL character in a path segment, a query filter or a JSON string reached PostgreSQL, which cannot hold
  one in text, and the request died with a 500 (a streamed export died after its 200 had been sent).
- A 405 did not say which methods are allowed (RFC 9110 requires ``Allow``).
- The 409 for a lease that had already ended put the lease's status (a string) in the problem's ``status``,
  which RFC 9457 and the OpenAPI document define as the HTTP status code.
- ``/metrics`` announced its charset twice.
- An instant near the ends of the calendar (``0001-01-01T00:00:00+14:00`` is in the year 0 in UTC;
  ``from=9999-12-31`` plus 31 days) overflowed Python's datetime: 500. Years before 1000 came back as
  ``123-01-27T...``, which is not RFC 3339.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.integration.conftest import create_broker_token, make_app, rt
from tests.support.broker import Broker, bearer
from tests.support.oidc_issuer import OidcIssuer
from tests.support.openbao import OpenBaoServer

NUL = "a\x00b"
RANGE = "from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z"
ONCE = {"type": "once", "start": "2027-01-01T00:00:00Z", "end": "2027-01-02T00:00:00Z"}


@pytest.fixture
def app(database_url: str, openbao: OpenBaoServer) -> Iterator[Flask]:
    flask_app = make_app(database_url, openbao)
    yield flask_app
    rt(flask_app).engine.dispose()


@pytest.fixture
def admin(app: Flask) -> dict[str, str]:
    return bearer(create_broker_token(app, "admin"))


@pytest.fixture
def broker(app: Flask, vault: OpenBaoServer) -> Iterator[Broker]:
    with OidcIssuer() as issuer:
        yield Broker.configured(app, create_broker_token(app, "admin", "lease-admin"), issuer, vault)


def assert_refused(response: object, status: int = 400) -> None:
    assert response.status_code == status, response.get_data(as_text=True)  # type: ignore[attr-defined]
    assert response.headers["Content-Type"] == "application/problem+json"  # type: ignore[attr-defined]
    assert response.get_json()["status"] == status  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "path",
    [
        "/v1/issuers/a%00b",
        "/v1/secrets/a%00b",
        "/v1/windows/a%00b",
        "/v1/freezes/a%00b",
        "/v1/policies/a%00b",
        "/v1/leases/a%00b",
        f"/v1/windows/a%00b/occurrences?{RANGE}",
    ],
)
def test_a_nul_in_a_path_segment_is_a_4xx(app: Flask, admin: dict[str, str], path: str) -> None:
    """No such object can exist: 404 where the database can compare the name (SQLite), 400 where it cannot."""
    response = app.test_client().get(path, headers=admin)
    assert response.status_code in (400, 404), response.get_data(as_text=True)
    assert_refused(response, response.status_code)


@pytest.mark.parametrize(
    "path",
    [
        "/v1/windows/calendar?policy=a%00b",
        "/v1/leases?repository=a%00b",
        "/v1/leases?pipeline_id=a%00b&format=jsonl",
        "/v1/leases?branch=a%00b&format=csv",
        "/v1/audit/events?actor=a%00b",
        "/v1/audit/events?action=a%00b&format=csv",
        "/v1/tokens?cursor=a%00b",
    ],
)
def test_a_nul_in_a_query_is_a_400(app: Flask, admin: dict[str, str], path: str) -> None:
    assert_refused(app.test_client().get(path, headers=admin))


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/freezes", {"name": "f", "timezone": "UTC", "schedule": ONCE, "reason": NUL}),
        ("/v1/windows", {"name": "w", "timezone": NUL, "schedule": ONCE}),
        ("/v1/secrets", {"name": "s", "kind": "kv", "mount": "secret", "path": NUL}),
        ("/v1/leases/revoke", {"filter": {"repository": NUL}, "reason": "drill"}),
        ("/v1/leases/lse_x/revoke", {"reason": NUL}),
        (
            "/v1/policies",
            {"name": "p", "issuer": "i", "secrets": ["s"], "repositories": [NUL], "windows": ["always"]},
        ),
        ("/v1/tokens", {"name": "t", "role": "auditor", "ttl": "1h", NUL: 1}),
    ],
)
def test_a_nul_in_a_json_body_is_a_400_naming_the_field(
    app: Flask, admin: dict[str, str], path: str, body: dict[str, object]
) -> None:
    response = app.test_client().post(path, json=body, headers=admin)
    assert_refused(response)
    assert "NUL" in str(response.get_json()["errors"])


def test_a_nul_in_a_ci_request_is_a_400(broker: Broker) -> None:
    assert_refused(broker.request_lease("prod-vault-token", idempotency_key=NUL))
    shown = broker.client.get("/v1/leases/a%00b", headers=bearer(broker.ci_token()))
    assert_refused(shown, 404 if shown.status_code == 404 else 400)


def test_a_405_names_the_allowed_methods(app: Flask) -> None:
    client: FlaskClient = app.test_client()
    response = client.delete("/v1/leases")
    assert_refused(response, 405)
    assert set(response.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
    assert "DELETE" not in response.headers["Allow"]


def test_the_conflict_for_an_ended_lease_keeps_its_http_status(broker: Broker) -> None:
    lease = broker.lease("prod-vault-token", idempotency_key="deploy-42")
    for _ in range(2):
        broker.client.post(f"/v1/leases/{lease['id']}/release", headers=bearer(broker.ci_token()))
    again = broker.client.post(f"/v1/leases/{lease['id']}/release", headers=bearer(broker.ci_token()))
    assert_refused(again, 409)
    assert again.get_json()["lease_status"] == "released"
    replay = broker.request_lease("prod-vault-token", idempotency_key="deploy-42")
    assert_refused(replay, 409)
    assert (replay.get_json()["lease_id"], replay.get_json()["lease_status"]) == (lease["id"], "released")


@pytest.mark.parametrize(
    "path",
    [
        "/v1/windows/calendar?from=9999-12-31T00:00:00Z&days=31",
        "/v1/windows/calendar?from=0123-01-20T01:51:19Z",
        "/v1/leases?issued_after=0001-01-01T00:00:00%2B14:00",
        "/v1/audit/events?after=9999-12-31T23:59:59-14:00",
        "/v1/windows/always/occurrences?from=9999-12-01T00:00:00Z&to=9999-12-31T23:59:59Z",
        "/v1/windows/always/occurrences?from=0001-01-01T00:00:00Z&to=0001-01-02T00:00:00Z",
    ],
)
def test_instants_at_the_ends_of_the_calendar_are_a_400(app: Flask, admin: dict[str, str], path: str) -> None:
    response = app.test_client().get(path, headers=admin)
    assert_refused(response)
    assert response.get_json()["errors"]  # naming the field


def test_metrics_name_their_charset_once(app: Flask) -> None:
    content_type = app.test_client().get("/metrics").headers["Content-Type"]
    assert content_type.startswith("text/plain")
    assert content_type.count("charset") == 1
