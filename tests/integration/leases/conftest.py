from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from tests.support.broker import Broker
from tests.support.oidc_issuer import OidcIssuer
from tests.support.openbao import OpenBaoServer


@pytest.fixture
def oidc_issuer() -> Iterator[OidcIssuer]:
    with OidcIssuer() as issuer:
        yield issuer


@pytest.fixture
def broker(app: Flask, admin_token: str, oidc_issuer: OidcIssuer, vault: OpenBaoServer) -> Broker:
    """A broker with the test issuer registered as ``github``, a kv and a token secret, and one policy."""
    b = Broker(app, app.test_client(), admin_token, oidc_issuer, vault)
    b.register_issuer()
    b.kv_secret()
    b.token_secret()
    b.policy()
    return b
