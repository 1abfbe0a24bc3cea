"""Broker tokens expire (90 days by default, at most TRANSOM_TOKEN_MAX_TTL) and note when they were last used
(issue 18, "Info")."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, select

from app.audit.ledger import Actor, Ledger
from app.cli import main
from app.clock import FrozenClock
from app.db import transaction
from app.instants import parse_instant
from app.tokens.models import ApiToken
from app.tokens.service import TokenService
from tests.integration.conftest import make_app, rt
from tests.support.broker import bearer
from tests.support.openbao import OpenBaoServer

T0 = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(T0)


@pytest.fixture
def timed(database_url: str, openbao: OpenBaoServer, clock: FrozenClock) -> Iterator[Flask]:
    app = make_app(database_url, openbao, clock=clock, token_max_ttl="30d")
    yield app
    rt(app).engine.dispose()


def _admin(app: Flask, clock: FrozenClock) -> str:
    with transaction(rt(app).sessions) as session:
        new = TokenService(session, clock, Ledger(session, clock)).create_token(
            "root", "admin", timedelta(days=1), actor=Actor("system", "tests")
        )
    return new.token


def _create(client: FlaskClient, admin: str, **body: Any) -> Any:
    return client.post("/v1/tokens", json={"role": "auditor", **body}, headers=bearer(admin))


def _stored(app: Flask, name: str) -> ApiToken:
    with rt(app).sessions() as session:
        record = session.scalar(select(ApiToken).where(ApiToken.name == name))
        assert record is not None
        return record


# --- expiry ----------------------------------------------------------------------------------------------


def test_a_token_without_ttl_expires_after_90_days(app: Flask, admin_token: str) -> None:
    created = _create(app.test_client(), admin_token, name="plain").get_json()
    lifetime = parse_instant(created["expires_at"]) - parse_instant(created["created_at"])
    assert lifetime == timedelta(days=90)


def test_a_ttl_over_the_maximum_is_refused_naming_the_setting(app: Flask, admin_token: str) -> None:
    response = _create(app.test_client(), admin_token, name="forever", ttl="366d")
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/problem+json"
    body = response.get_json()
    assert "ttl" in body["errors"] and "TRANSOM_TOKEN_MAX_TTL" in body["detail"]
    assert _create(app.test_client(), admin_token, name="year", ttl="365d").status_code == 201


def test_the_maximum_is_a_setting_and_caps_the_default(timed: Flask, clock: FrozenClock) -> None:
    admin, client = _admin(timed, clock), timed.test_client()
    default = _create(client, admin, name="capped").get_json()
    assert parse_instant(default["expires_at"]) == T0 + timedelta(days=30)
    assert _create(client, admin, name="too-long", ttl="31d").status_code == 400
    assert _create(client, admin, name="zero", ttl=0).status_code == 400


def test_an_expired_token_is_401(timed: Flask, clock: FrozenClock) -> None:
    admin, client = _admin(timed, clock), timed.test_client()
    token = _create(client, admin, name="brief", ttl="1h").get_json()["token"]
    assert client.get("/v1/tokens", headers=bearer(token)).status_code == 200
    clock.advance(timedelta(hours=1))
    response = client.get("/v1/tokens", headers=bearer(token))
    assert response.status_code == 401
    assert "expired" in response.get_json()["detail"]


def test_the_cli_gives_a_default_and_refuses_over_the_maximum(
    database_url: str, openbao: OpenBaoServer
) -> None:
    env = {"TRANSOM_ENV": "test", "TRANSOM_DATABASE_URL": database_url, "TRANSOM_TOKEN_MAX_TTL": "10d"}
    runner = CliRunner()
    refused = runner.invoke(
        main, ["tokens", "create", "--name", "ops", "--role", "admin", "--ttl", "11d"], env=env
    )
    assert refused.exit_code != 0 and "TRANSOM_TOKEN_MAX_TTL" in refused.output
    made = runner.invoke(main, ["tokens", "create", "--name", "ops", "--role", "admin"], env=env)
    assert made.exit_code == 0, made.output
    app = make_app(database_url, openbao)
    try:
        record = _stored(app, "ops")
        assert record.expires_at is not None
        assert record.expires_at - record.created_at == timedelta(days=10)  # the default, capped
    finally:
        rt(app).engine.dispose()


# --- last_used_at ----------------------------------------------------------------------------------------


def _listed(client: FlaskClient, admin: str, name: str) -> Any:
    items = client.get("/v1/tokens", headers=bearer(admin)).get_json()["items"]
    return next(item for item in items if item["name"] == name)


def test_last_used_at_is_written_at_most_once_a_minute(timed: Flask, clock: FrozenClock) -> None:
    admin, client = _admin(timed, clock), timed.test_client()
    token = _create(client, admin, name="scraper").get_json()["token"]
    assert _listed(client, admin, "scraper")["last_used_at"] is None  # never used yet

    writes: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE API_TOKENS"):
            writes.append(statement)

    engine = rt(timed).engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        for _ in range(20):
            assert client.get("/v1/leases", headers=bearer(token)).status_code == 200
            clock.advance(timedelta(seconds=2))  # 40 s in all: still the same minute
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(writes) == 1
    assert _stored(timed, "scraper").last_used_at == T0

    clock.set(T0 + timedelta(seconds=60))
    assert client.get("/v1/leases", headers=bearer(token)).status_code == 200
    assert _stored(timed, "scraper").last_used_at == T0 + timedelta(seconds=60)


def test_a_refused_token_is_not_marked_used(timed: Flask, clock: FrozenClock) -> None:
    admin, client = _admin(timed, clock), timed.test_client()
    token = _create(client, admin, name="late", ttl="1h").get_json()["token"]
    clock.advance(timedelta(hours=2))
    assert client.get("/v1/leases", headers=bearer(token)).status_code == 401
    assert _stored(timed, "late").last_used_at is None


def test_signing_in_to_the_pages_marks_the_token_used(timed: Flask, clock: FrozenClock) -> None:
    admin, client = _admin(timed, clock), timed.test_client()
    token = _create(client, admin, name="person").get_json()["token"]
    page = timed.test_client()
    page.get("/ui/login")
    with page.session_transaction() as session:
        csrf = session["csrf_token"]
    assert page.post("/ui/login", data={"token": token, "csrf_token": csrf}).status_code == 303
    assert _stored(timed, "person").last_used_at == T0
