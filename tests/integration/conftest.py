"""Fixtures for tests that need the app, a migrated database (SQLite and PostgreSQL) and the real OpenBao."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from app.audit.ledger import Actor, Ledger
from app.clock import Clock, SystemClock
from app.db import transaction
from app.runtime import Runtime, runtime_of
from app.tokens.service import TokenService
from app.vault.port import SecretBackend
from tests.support.broker import Broker
from tests.support.oidc_issuer import OidcIssuer
from tests.support.openbao import OpenBaoServer


def make_app(
    database_url: str,
    openbao: Any,
    *,
    vault: SecretBackend | None = None,
    clock: Clock | None = None,
    **overrides: Any,
) -> Flask:
    """The broker on ``database_url`` and the test OpenBao; ``vault`` and ``clock`` replace the real ones."""
    settings = {
        "env": "test",
        "database_url": database_url,
        "vault_addr": openbao.addr,
        "vault_token": openbao.root_token,
        "allow_insecure_issuers": True,
        **overrides,
    }
    return create_app(settings, vault=vault, clock=clock)


@pytest.fixture
def app(database_url: str, openbao: Any) -> Iterator[Flask]:
    flask_app = make_app(database_url, openbao)
    yield flask_app
    rt(flask_app).engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def rt(app: Flask) -> Runtime:
    return runtime_of(app)


def create_broker_token(app: Flask, role: str, name: str | None = None, *, clock: Clock | None = None) -> str:
    runtime = rt(app)
    clock = clock or SystemClock()
    with transaction(runtime.sessions) as session:
        new = TokenService(session, clock, Ledger(session, clock)).create_token(
            name or f"test-{role}", role, None, actor=Actor("system", "tests")
        )
    return new.token


@pytest.fixture
def admin_token(app: Flask) -> str:
    return create_broker_token(app, "admin")


@pytest.fixture
def auditor_token(app: Flask) -> str:
    return create_broker_token(app, "auditor")


@pytest.fixture
def oidc_issuer() -> Iterator[OidcIssuer]:
    with OidcIssuer() as issuer:
        yield issuer


@pytest.fixture
def broker(app: Flask, admin_token: str, oidc_issuer: OidcIssuer, vault: OpenBaoServer) -> Broker:
    """A broker with the test issuer registered as ``github``, a kv and a token secret, and one policy."""
    return Broker.configured(app, admin_token, oidc_issuer, vault)
