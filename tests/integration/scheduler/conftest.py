"""A broker whose clock the test moves: leases are granted at the frozen instant, then the clock jumps past
their expiry and the jobs run with the same clock. Vault and the database are real."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from flask import Flask

from app.clock import FrozenClock
from app.runtime import Runtime, runtime_of
from tests.integration.conftest import create_broker_token, make_app
from tests.support.oidc_issuer import OidcIssuer
from tests.support.openbao import OpenBaoServer

# A Monday, 09:45 UTC: far enough from any real "now" that nothing can pass by accident on real time.
START = datetime(2031, 3, 3, 9, 45, tzinfo=UTC)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


# The integration tier's ``broker`` is built from ``app``, ``admin_token`` and ``oidc_issuer``: here all three
# run on the frozen clock, so that broker does too.


@pytest.fixture
def app(database_url: str, vault: OpenBaoServer, clock: FrozenClock) -> Iterator[Flask]:
    """The app on the frozen clock; tests pause Vault, so a hanging call gives up after a second."""
    flask_app = make_app(database_url, vault, clock=clock, vault_timeout_seconds=1.0)
    yield flask_app
    runtime_of(flask_app).engine.dispose()


@pytest.fixture
def admin_token(app: Flask, clock: FrozenClock) -> str:
    return create_broker_token(app, "admin", clock=clock)


@pytest.fixture
def oidc_issuer(clock: FrozenClock) -> Iterator[OidcIssuer]:
    """Tokens stamped by the frozen clock."""
    with OidcIssuer(clock=clock) as issuer:
        yield issuer


@pytest.fixture
def rt(app: Flask) -> Runtime:
    return runtime_of(app)
