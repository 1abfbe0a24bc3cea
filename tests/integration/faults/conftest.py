"""A broker that reaches OpenBao through a FaultyProxy (slow, stuck or resetting Vault on demand), with a
one-second Vault timeout, configured like the ``broker`` fixture."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from tests.integration.conftest import create_broker_token, make_app, rt
from tests.integration.faults.fault_checks import revoke_transom_tokens
from tests.support.broker import Broker
from tests.support.faulty_proxy import FaultyProxy
from tests.support.oidc_issuer import OidcIssuer
from tests.support.openbao import OpenBaoServer

VAULT_TIMEOUT_SECONDS = 1.0


@pytest.fixture(autouse=True)
def _clean_vault(vault: OpenBaoServer) -> None:
    revoke_transom_tokens(vault)


@pytest.fixture
def proxy(vault: OpenBaoServer) -> Iterator[FaultyProxy]:
    with FaultyProxy(vault.port) as faulty:
        yield faulty


@pytest.fixture
def proxied_app(database_url: str, vault: OpenBaoServer, proxy: FaultyProxy) -> Iterator[Flask]:
    app = make_app(database_url, vault, vault_addr=proxy.addr, vault_timeout_seconds=VAULT_TIMEOUT_SECONDS)
    yield app
    rt(app).engine.dispose()


@pytest.fixture
def proxied_broker(
    proxied_app: Flask, vault: OpenBaoServer, oidc_issuer: OidcIssuer, proxy: FaultyProxy
) -> Iterator[Broker]:
    b = Broker(
        proxied_app, proxied_app.test_client(), create_broker_token(proxied_app, "admin"), oidc_issuer, vault
    )
    b.register_issuer()
    b.kv_secret()
    b.token_secret()
    b.policy()
    yield b
    proxy.forward()  # release whatever a failed test left held, before the proxy closes
