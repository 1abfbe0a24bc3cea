"""A configured broker served on loopback, for the e2e tests of what a CI job runs (the client installed
alone, the GitHub Action, the GitLab component): the integration tests' ``broker`` (issuer ``github``, the
secrets ``prod-db-static`` and ``prod-vault-token``, the policy ``deploy-prod``) served over HTTP, and an
Actions-like ID token endpoint that mints real tokens from the suite's issuer."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.integration.client.conftest import FakeGithubTokenEndpoint, LiveBroker
from tests.integration.conftest import create_broker_token, make_app, rt
from tests.support.broker import Broker
from tests.support.oidc_issuer import OidcIssuer
from tests.support.openbao import OpenBaoServer
from tests.support.server import serving


@contextmanager
def live_ci_broker(database_url: str, vault: OpenBaoServer, workdir: Path) -> Iterator[LiveBroker]:
    app = make_app(database_url, vault)
    try:
        with OidcIssuer() as issuer:
            broker = Broker.configured(app, create_broker_token(app, "admin"), issuer, vault)
            endpoint = FakeGithubTokenEndpoint(issuer)
            try:
                with serving(app) as url:
                    yield LiveBroker(broker, url, endpoint, workdir)
            finally:
                endpoint.close()
    finally:
        rt(app).engine.dispose()
