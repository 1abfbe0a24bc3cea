"""A live broker over real HTTP, a stand-in for GitHub's ID token endpoint, and the client as a process.

The client (``transom lease ...``) runs as its own process, as in a CI job, against the test app served by
werkzeug on a free loopback port; its ID tokens come from the test issuer through ``FakeGithubTokenEndpoint``,
which answers like the Actions runtime (``ACTIONS_ID_TOKEN_REQUEST_URL``) only to the right bearer.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from hvac.exceptions import Forbidden

from app.settings import PROJECT_ROOT
from tests.support.broker import Broker
from tests.support.databases import SqliteDatabases
from tests.support.oidc_issuer import OidcIssuer
from tests.support.openbao import OpenBaoServer
from tests.support.server import serving

CLIENT = [sys.executable, "-c", "from app.cli import main; main(prog_name='transom')"]


@pytest.fixture
def database_url(sqlite_databases: SqliteDatabases) -> str:
    """SQLite only: what is under test here is the client, not the broker's storage."""
    return sqlite_databases.fresh()


class FakeGithubTokenEndpoint:
    """GitHub Actions' ID token endpoint: ``GET ...&audience=AUD``, the runtime's bearer → ``{"value"}``."""

    def __init__(self, issuer: OidcIssuer) -> None:
        self.issuer = issuer
        self.bearer = secrets.token_urlsafe(24)
        self.claims: dict[str, Any] = {}
        self.requests: list[dict[str, Any]] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                authorized = self.headers.get("Authorization") == f"Bearer {endpoint.bearer}"
                endpoint.requests.append({"query": query, "authorized": authorized})
                if not authorized:
                    self._reply(401, {"message": "bad credentials"})
                    return
                audience = query.get("audience", [None])[0]
                claims = endpoint.issuer.github_claims(**endpoint.claims)
                if audience is not None:
                    claims["aud"] = audience
                self._reply(200, {"count": 1, "value": endpoint.issuer.mint(claims=claims)})

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/_apis/token?api-version=2.0"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@dataclass
class LiveBroker:
    """The ``broker`` fixture's app served over HTTP, and what a CI job's environment would hold."""

    broker: Broker
    url: str
    github: FakeGithubTokenEndpoint
    workdir: Path
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def vault(self) -> OpenBaoServer:
        return self.broker.vault

    def env(self, **overrides: str | None) -> dict[str, str]:
        """A GitHub Actions job's environment; ``NAME=None`` leaves a variable out."""
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "ACTIONS_", "TRANSOM_"))}
        env = {
            **keep,
            "TRANSOM_URL": self.url,
            "TRANSOM_AUDIENCE": self.broker.issuer.audience,
            "ACTIONS_ID_TOKEN_REQUEST_URL": self.github.url,
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": self.github.bearer,
            **self.extra_env,
        }
        for name, value in overrides.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        return env

    def client(
        self, *args: str, env: Mapping[str, str] | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CLIENT, *args],
            env=dict(env if env is not None else self.env()),
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start_client(self, *args: str, env: Mapping[str, str] | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*CLIENT, *args],
            env=dict(env if env is not None else self.env()),
            cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def leases(self) -> list[dict[str, Any]]:
        response = self.broker.admin("GET", "/v1/leases")
        assert response.status_code == 200, response.get_json()
        items: list[dict[str, Any]] = response.get_json()["items"]
        return items

    def kv_values(self) -> dict[str, str]:
        """What the ``prod-db-static`` secret holds at Vault."""
        read = self.vault.client().secrets.kv.v2.read_secret_version(
            path=self.broker.kv_path, raise_on_deleted_version=True
        )
        values: dict[str, str] = read["data"]["data"]
        return values

    def token_works(self, token: str) -> bool:
        with self.vault.client_for(token) as client:
            try:
                client.auth.token.lookup_self()
                return True
            except Forbidden:
                return False


@pytest.fixture
def github_endpoint(oidc_issuer: OidcIssuer) -> Iterator[FakeGithubTokenEndpoint]:
    endpoint = FakeGithubTokenEndpoint(oidc_issuer)
    yield endpoint
    endpoint.close()


@pytest.fixture
def live(broker: Broker, github_endpoint: FakeGithubTokenEndpoint, tmp_path: Path) -> Iterator[LiveBroker]:
    with serving(broker.app) as url:
        yield LiveBroker(broker, url, github_endpoint, tmp_path)
