"""A broker whose clock the test moves: leases are granted at the frozen instant, then the clock jumps past
their expiry and the jobs run with the same clock. Vault and the database are real."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from flask import Flask

from app import create_app
from app.audit.ledger import Actor, Ledger
from app.clock import FrozenClock
from app.db import transaction
from app.runtime import Runtime
from app.tokens.service import TokenService
from tests.integration.scheduler.lease_seeding import runtime_of
from tests.support.broker import Broker
from tests.support.oidc_issuer import OidcIssuer
from tests.support.openbao import OpenBaoServer

# A Monday, 09:45 UTC: far enough from any real "now" that nothing can pass by accident on real time.
START = datetime(2031, 3, 3, 9, 45, tzinfo=UTC)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def frozen_app(database_url: str, vault: OpenBaoServer, clock: FrozenClock) -> Iterator[Flask]:
    app = create_app(
        {
            "env": "test",
            "database_url": database_url,
            "vault_addr": vault.addr,
            "vault_token": vault.root_token,
            "vault_timeout_seconds": 1.0,  # tests pause Vault: a hanging call gives up after a second
            "allow_insecure_issuers": True,
        },
        clock=clock,
    )
    yield app
    runtime_of(app).engine.dispose()


@pytest.fixture
def broker(frozen_app: Flask, vault: OpenBaoServer, clock: FrozenClock) -> Iterator[Broker]:
    """Issuer ``github`` (tokens stamped by the frozen clock), a kv and a token secret, ``deploy-prod``."""
    with OidcIssuer(clock=clock) as issuer:
        b = Broker(frozen_app, frozen_app.test_client(), _admin_token(frozen_app, clock), issuer, vault)
        b.register_issuer()
        b.kv_secret()
        b.token_secret()
        b.policy()
        yield b


@pytest.fixture
def rt(frozen_app: Flask) -> Runtime:
    return runtime_of(frozen_app)


def _admin_token(app: Flask, clock: FrozenClock) -> str:
    with transaction(runtime_of(app).sessions) as session:
        new = TokenService(session, clock, Ledger(session, clock)).create_token(
            "test-admin", "admin", None, actor=Actor("system", "tests")
        )
    return new.token
