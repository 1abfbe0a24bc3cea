"""Hostile pagination cursors against every list route: a 400 naming ``cursor`` or a page, never a 500
(issue 18, "Info": ``[99999999999999999999999999]`` overflowed SQLite's INTEGER).

A cursor is base64 of a JSON array the API made; the attacker can send any text, or base64 of any JSON:
integers beyond 64 bits, booleans, floats, strings with NUL or lone surrogates (which PostgreSQL refuses),
nested arrays, the wrong arity.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.integration.conftest import create_broker_token, make_app, rt
from tests.support.openbao import OpenBaoServer

API_LISTS = [
    "/v1/issuers",
    "/v1/secrets",
    "/v1/windows",
    "/v1/freezes",
    "/v1/policies",
    "/v1/tokens",
    "/v1/leases",
    "/v1/audit/events",
]
PAGE_LISTS = ["/ui/leases", "/ui/events"]

OVERFLOW = "[99999999999999999999999999]"

_scalars = (
    st.integers()
    | st.integers(min_value=2**63 - 2, max_value=2**70)
    | st.integers(min_value=-(2**70), max_value=-(2**63) + 1)
    | st.booleans()
    | st.none()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
    | st.sampled_from(["\x00", "\ud800", "2026-12-01T08:00:00Z", "9999-12-31T23:59:59-14:00", "lse_x\x00"])
)
_json = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=3), max_leaves=6)


def _encoded(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def _raw_encoded(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode("utf-8", "surrogatepass")).decode().rstrip("=")


cursors = (
    st.lists(_json, min_size=0, max_size=3).map(_encoded)
    | _json.map(_encoded)
    | st.text(max_size=80).map(_raw_encoded)
    | st.text(max_size=80)
)

FUZZ = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def lists_app(database_url: str, openbao: OpenBaoServer) -> Iterator[Flask]:
    app = make_app(database_url, openbao)
    yield app
    rt(app).engine.dispose()


def _assert_page_or_400(response: Any, cursor: str) -> None:
    assert response.status_code in (200, 400), (cursor, response.status_code, response.get_data(as_text=True))


def _check_api(client: FlaskClient, token: str, path: str, cursor: str) -> None:
    response = client.get(path, query_string={"cursor": cursor}, headers={"Authorization": f"Bearer {token}"})
    _assert_page_or_400(response, cursor)
    if response.status_code == 400:
        assert response.headers["Content-Type"] == "application/problem+json"
        assert "cursor" in response.get_json().get("errors", {}), response.get_json()


@pytest.mark.parametrize("path", API_LISTS)
def test_a_hostile_cursor_is_a_400_on_every_list_route(lists_app: Flask, path: str) -> None:
    token = create_broker_token(lists_app, "auditor")
    client = lists_app.test_client()

    @FUZZ
    @given(cursor=cursors)
    @example(cursor=_encoded(json.loads(OVERFLOW)))
    @example(cursor=_encoded([2**63]))
    @example(cursor=_encoded([-(2**63) - 1]))
    @example(cursor=_encoded(["2026-12-01T08:00:00Z", "\ud800"]))
    @example(cursor=_encoded(["2026-12-01T08:00:00Z", "a\x00b"]))
    @example(cursor=_encoded([True]))
    def check(cursor: str) -> None:
        _check_api(client, token, path, cursor)

    check()


def test_the_reviews_overflowing_cursor_is_a_clear_400(lists_app: Flask) -> None:
    token = create_broker_token(lists_app, "admin")
    response = lists_app.test_client().get(
        "/v1/tokens",
        query_string={"cursor": _encoded(json.loads(OVERFLOW))},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 400
    assert response.get_json()["errors"] == {"cursor": ["is not a cursor this API returned"]}


@pytest.mark.parametrize("path", PAGE_LISTS)
def test_a_hostile_cursor_on_the_pages_is_a_400(lists_app: Flask, path: str) -> None:
    token = create_broker_token(lists_app, "auditor")
    client = lists_app.test_client()
    client.get("/ui/login")
    with client.session_transaction() as session:
        csrf = session["csrf_token"]
    assert client.post("/ui/login", data={"token": token, "csrf_token": csrf}).status_code == 303

    @FUZZ
    @given(cursor=cursors)
    @example(cursor=_encoded(["2026-12-01T08:00:00Z", "\ud800"]))
    @example(cursor=_encoded([2**64, 1]))
    def check(cursor: str) -> None:
        _assert_page_or_400(client.get(path, query_string={"cursor": cursor}), cursor)

    check()
