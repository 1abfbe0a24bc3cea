"""`transom serve` as operators run it: JSON log lines without a credential in them, and keep-alive.

A canary KV value is leased, a canary broker token and a canary CI token are sent in Authorization headers and
in a request body, and none of them appears in anything the served process wrote (stdout and stderr, at
DEBUG). A pooled client reuses its connection across an idle pause shorter than TRANSOM_KEEPALIVE_SECONDS,
and after idle periods longer than it, finds the connection closed cleanly and opens a new one: no reset.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from urllib3.util.wait import wait_for_read

from app.runtime import runtime_of
from tests.e2e.serve.test_serve_commands import _wait_until_up
from tests.integration.conftest import create_broker_token, make_app
from tests.support.broker import Broker, bearer
from tests.support.oidc_issuer import OidcIssuer
from tests.support.openbao import OpenBaoServer
from tests.support.processes import free_port, transom_env

TRANSOM = [sys.executable, "-m", "app.cli"]
KEEPALIVE = 3


@dataclass
class Served:
    url: str
    broker: Broker
    canary_value: str
    stop: Any  # () -> str: stops the server, returns everything it wrote


@pytest.fixture
def served(request: pytest.FixtureRequest, openbao: OpenBaoServer, tmp_path: Path) -> Iterator[Served]:
    database = f"sqlite:///{tmp_path / 'logs.db'}"
    keepalive = str(getattr(request, "param", KEEPALIVE))  # seconds; a test may ask for another
    env = transom_env(database, openbao, log_level="DEBUG", keepalive_seconds=keepalive, threads="2")
    env.pop("TRANSOM_LOG_FORMAT", None)  # json is serve's default
    subprocess.run([*TRANSOM, "db", "upgrade"], env=env, check=True, capture_output=True, timeout=60)
    app = make_app(database, openbao)
    canary_value = f"canary-value-{uuid.uuid4().hex}"
    with OidcIssuer() as issuer:
        broker = Broker(app, app.test_client(), create_broker_token(app, "admin", "ops"), issuer, openbao)
        broker.register_issuer()
        broker.kv_secret(values={"db_password": canary_value})
        broker.token_secret()
        broker.policy()
        port = free_port()
        out_path, err_path = tmp_path / "serve.out", tmp_path / "serve.err"
        with out_path.open("wb") as out, err_path.open("wb") as err:
            server = subprocess.Popen(
                [*TRANSOM, "serve", "--port", str(port)],
                env=env,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        stopped = False

        def stop() -> str:
            nonlocal stopped
            if not stopped:
                stopped = True
                os.killpg(server.pid, signal.SIGTERM)
                server.wait(timeout=30)
            return out_path.read_text() + err_path.read_text()

        url = f"http://127.0.0.1:{port}"
        try:
            _wait_until_up(url, server)
            yield Served(url, broker, canary_value, stop)
        finally:
            stop()
            runtime_of(app).engine.dispose()


def test_no_secret_or_token_reaches_the_json_logs(served: Served) -> None:
    url, broker = served.url, served.broker
    canary_token = f"trn_{uuid.uuid4().hex}canary"
    ci_token = broker.ci_token()

    leased = requests.post(
        f"{url}/v1/leases",
        json={"secret": "prod-db-static", "ttl": "10m"},
        headers={**bearer(ci_token), "X-Request-Id": "req-lease-1"},
        timeout=10,
    )
    assert leased.status_code == 201, leased.text
    assert leased.json()["data"]["db_password"] == served.canary_value
    assert leased.headers["X-Request-Id"] == "req-lease-1"
    lease_id = leased.json()["id"]
    shown = requests.get(f"{url}/v1/leases/{lease_id}", headers=bearer(broker.admin_token), timeout=10)
    assert shown.status_code == 200
    refused = requests.get(f"{url}/v1/tokens", headers=bearer(canary_token), timeout=10)
    assert refused.status_code == 401
    in_body = requests.post(
        f"{url}/v1/leases",
        json={"secret": "prod-db-static", "token": canary_token, "id_token": ci_token},
        headers=bearer(f"{ci_token}x"),
        timeout=10,
    )
    assert in_body.status_code in (400, 401, 422)
    as_form = requests.post(
        f"{url}/v1/leases", data=f"token={canary_token}", headers=bearer(canary_token), timeout=10
    )
    assert as_form.status_code >= 400

    logs = served.stop()
    lines = [line for line in logs.splitlines() if line.strip()]
    assert lines, "the served process wrote no log lines"
    for line in lines:
        event = json.loads(line)  # every line is one JSON event
        assert {"timestamp", "level", "logger", "message"} <= set(event), line
        assert event["timestamp"].endswith("Z")
    access = [json.loads(line) for line in lines if '"gunicorn.access"' in line]
    assert any(e.get("request_id") == "req-lease-1" and "/v1/leases" in e["message"] for e in access)
    for canary in (served.canary_value, canary_token, ci_token, broker.admin_token, ci_token.split(".")[1]):
        assert canary not in logs
    assert "\x1b[" not in logs


def _local_port(session: requests.Session, url: str) -> int:
    """Make a request on ``session`` and say from which local port it went (a new one: a new connection)."""
    with session.get(f"{url}/healthz", timeout=5, stream=True) as response:
        assert response.status_code == 200
        assert response.headers.get("Connection", "").lower() != "close"
        port = int(response.raw.connection.sock.getsockname()[1])
        response.content  # noqa: B018 - read to the end, so the connection goes back to the pool
    return port


def test_a_pooled_client_reuses_its_connection_across_an_idle_pause(served: Served) -> None:
    url = served.url
    with requests.Session() as session:
        first = _local_port(session, url)
        time.sleep(1.5)  # idle, but less than the keep-alive
        assert [_local_port(session, url) for _ in range(3)] == [first] * 3  # no reset, no reconnect
        pools = session.get_adapter(url).poolmanager.pools  # type: ignore[attr-defined]
        pool = pools[next(iter(pools.keys()))]
        assert pool.num_connections == 1 and pool.num_requests == 4
    logs = served.stop()
    ready = [json.loads(line) for line in logs.splitlines() if "serving on" in line]
    assert ready and f"keepalive {KEEPALIVE} s" in ready[0]["message"]


@pytest.mark.parametrize("served", [1], indirect=True)  # TRANSOM_KEEPALIVE_SECONDS=1
def test_a_pooled_client_idling_past_the_keepalive_gets_a_new_connection_not_a_reset(served: Served) -> None:
    url = served.url
    with requests.Session() as session:
        ports = []
        for _ in range(3):
            # POST: a request the client never retries, so a reset would surface as an error here.
            with session.post(
                f"{url}/v1/leases",
                json={"secret": "prod-db-static", "ttl": "5m"},
                headers=bearer(served.broker.ci_token()),
                stream=True,
                timeout=10,
            ) as response:
                assert response.status_code == 201
                sock = response.raw.connection.sock
                ports.append(sock.getsockname()[1])
                response.content  # noqa: B018 - read to the end, so the connection goes back to the pool
            idle_since = time.monotonic()
            assert wait_for_read(sock, timeout=5)  # idle until the server closes it: end of file
            assert time.monotonic() - idle_since >= 0.9  # not before its keep-alive ran out
        assert len(set(ports)) == 3  # each request after an idle period went on a new connection
