"""Page sessions end on the server (issue 18, finding 11) and their cookie is Secure over https.

The attack: copy the session cookie of a signed-in person (a shared machine, a proxy log, a stolen laptop's
profile), wait for them to sign out, then replay it. Signing out must end the session on the server, not
only in the browser that signed out.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic import command
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, pool, text

from app.migrate import alembic_config
from tests.integration.audit.test_web_pages import Browser, signed_in
from tests.integration.conftest import create_broker_token, make_app, rt
from tests.support.broker import bearer
from tests.support.databases import PostgresDatabases, SqliteDatabases
from tests.support.openbao import OpenBaoServer


def _cookie(browser: Browser) -> str:
    cookie = browser.client.get_cookie("session")
    assert cookie is not None, "no session cookie"
    return cookie.value


def _replayed(app: Flask, cookie: str) -> Browser:
    """Another browser (the attacker's) that presents a copied cookie."""
    thief = Browser(app)
    thief.client.set_cookie("session", cookie)
    return thief


def _assert_signed_out(browser: Browser) -> None:
    response = browser.get("/ui/leases")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/ui/login")
    assert browser.get("/ui/leases.csv").status_code == 302  # the exports too


def test_a_cookie_copied_before_sign_out_stops_working(app: Flask, auditor_token: str) -> None:
    person = signed_in(app, auditor_token)
    copied = _cookie(person)
    assert _replayed(app, copied).get("/ui/leases").status_code == 200  # the copy works while signed in

    assert person.post("/ui/logout", {}).status_code == 303

    _assert_signed_out(_replayed(app, copied))
    _assert_signed_out(person)


def test_a_copied_cookie_cannot_post_after_sign_out(app: Flask, admin_token: str) -> None:
    person = signed_in(app, admin_token)
    copied = _cookie(person)
    assert person.post("/ui/logout", {}).status_code == 303
    thief = _replayed(app, copied)
    # The copied cookie still holds a valid CSRF token: only the server-side check can refuse it.
    with thief.client.session_transaction() as stolen:
        csrf = stolen["csrf_token"]
    response = thief.client.post("/ui/revoke", data={"csrf_token": csrf, "lease_ids": "x"})
    assert response.status_code == 403


def test_signing_in_again_after_sign_out_works_and_old_copies_stay_dead(
    app: Flask, auditor_token: str
) -> None:
    first = signed_in(app, auditor_token)
    copied = _cookie(first)
    assert first.post("/ui/logout", {}).status_code == 303
    again = signed_in(app, auditor_token)
    assert again.get("/ui/leases").status_code == 200
    _assert_signed_out(_replayed(app, copied))


def test_signing_out_ends_the_tokens_sessions_in_every_browser(app: Flask, auditor_token: str) -> None:
    laptop, desktop = signed_in(app, auditor_token), signed_in(app, auditor_token)
    assert laptop.post("/ui/logout", {}).status_code == 303
    _assert_signed_out(desktop)


def test_a_stale_cookie_cannot_sign_out_someone_else(app: Flask, auditor_token: str) -> None:
    old = signed_in(app, auditor_token)
    copied = _cookie(old)
    assert old.post("/ui/logout", {}).status_code == 303
    current = signed_in(app, auditor_token)
    thief = _replayed(app, copied)
    with thief.client.session_transaction() as stolen:
        csrf = stolen["csrf_token"]
    thief.client.post("/ui/logout", data={"csrf_token": csrf})
    assert current.get("/ui/leases").status_code == 200  # the dead copy bumped nothing


def test_deleting_the_token_ends_copied_sessions_too(
    app: Flask, client: FlaskClient, admin_token: str, auditor_token: str
) -> None:
    person = signed_in(app, auditor_token)
    copied = _cookie(person)
    assert client.delete("/v1/tokens/test-auditor", headers=bearer(admin_token)).status_code == 204
    _assert_signed_out(_replayed(app, copied))
    # A new token of the same name starts from generation 0 again: the old cookie's digest differs.
    create_broker_token(app, "auditor")
    _assert_signed_out(_replayed(app, copied))


# --- the Secure flag -------------------------------------------------------------------------------------


def _session_cookie_header(client: FlaskClient, token: str, **kwargs: object) -> str:
    csrf_page = client.get("/ui/login", **kwargs)  # type: ignore[arg-type]
    assert csrf_page.status_code == 200
    with client.session_transaction(**kwargs) as session:  # type: ignore[arg-type]
        csrf = session["csrf_token"]
    response = client.post("/ui/login", data={"token": token, "csrf_token": csrf}, **kwargs)  # type: ignore[arg-type]
    assert response.status_code == 303
    return next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("session="))


@pytest.fixture
def behind_a_proxy(database_url: str, openbao: OpenBaoServer) -> Iterator[Flask]:
    app = make_app(database_url, openbao, trusted_proxy_hops=1)
    yield app
    rt(app).engine.dispose()


def test_the_cookie_is_secure_when_the_request_came_over_https(app: Flask, auditor_token: str) -> None:
    assert "Secure" in _session_cookie_header(app.test_client(), auditor_token, base_url="https://localhost")
    assert "Secure" not in _session_cookie_header(app.test_client(), auditor_token)  # plain http (dev)


def test_the_cookie_is_secure_per_a_trusted_proxys_forwarded_proto(behind_a_proxy: Flask) -> None:
    token = create_broker_token(behind_a_proxy, "auditor")
    forwarded = {"headers": {"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.7"}}
    assert "Secure" in _session_cookie_header(behind_a_proxy.test_client(), token, **forwarded)


def test_an_untrusted_forwarded_proto_is_ignored(app: Flask, auditor_token: str) -> None:
    # No trusted proxy (TRANSOM_TRUSTED_PROXY_HOPS=0): anyone could send the header, so it means nothing.
    forwarded = {"headers": {"X-Forwarded-Proto": "https"}}
    assert "Secure" not in _session_cookie_header(app.test_client(), auditor_token, **forwarded)


# --- migration 0005 --------------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_database(request: pytest.FixtureRequest) -> str:
    databases: SqliteDatabases | PostgresDatabases = request.getfixturevalue(f"{request.param}_databases")
    return databases.empty()


def test_existing_tokens_gain_a_session_generation_and_it_downgrades(empty_database: str) -> None:
    config = alembic_config(empty_database)
    command.upgrade(config, "0004")
    engine = create_engine(empty_database, poolclass=pool.NullPool)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO api_tokens (name, role, token_hash, created_at) "
                    "VALUES ('old', 'admin', :digest, CURRENT_TIMESTAMP)"
                ),
                {"digest": "0" * 64},
            )
        command.upgrade(config, "0005")
        with engine.connect() as connection:
            assert connection.execute(text("SELECT session_generation FROM api_tokens")).scalar_one() == 0
        command.downgrade(config, "0004")
        with engine.connect() as connection:
            assert connection.execute(text("SELECT name FROM api_tokens")).scalar_one() == "old"
    finally:
        engine.dispose()
