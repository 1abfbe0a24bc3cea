"""`transom serve` stopped with SIGTERM while CI jobs are asking for leases (docs/OPERATIONS.md, "Stopping").

Threads post lease requests for a Vault token secret, each on a new connection, and SIGTERM reaches the
gunicorn master mid-load. Every request must be either answered (201) or cleanly refused: the connection
refused, or a 503; never a connection reset or closed without an answer (a client could not tell whether
its lease was granted). Afterwards nothing is left behind: no lease is
``issuing``, and every token Vault holds for the secret belongs to a lease the database has active.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from app.leases.models import Lease, LeaseStatus
from app.runtime import runtime_of
from tests.e2e.serve.test_serve_commands import _wait_until_up
from tests.integration.conftest import create_broker_token, make_app
from tests.support.broker import Broker, bearer
from tests.support.oidc_issuer import OidcIssuer
from tests.support.openbao import OpenBaoServer
from tests.support.processes import free_port, transom_env

TRANSOM = [sys.executable, "-m", "app.cli"]
CLIENTS = 6
GRACEFUL_TIMEOUT = 20


@dataclass
class Outcome:
    key: str  # the request's idempotency key
    status: int | None = None  # the HTTP status, when answered
    error: str | None = None  # else the client's error: "refused", or "dropped: ..." (reset, closed)
    finished: float = 0.0  # time.monotonic()


@dataclass
class Load:
    """Client threads posting lease requests until told to stop."""

    url: str
    tokens: list[str]
    secret: str
    outcomes: list[Outcome] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self) -> None:
        while not self.stop.is_set():
            with self.lock:
                if not self.tokens:
                    return
                token = self.tokens.pop()
            outcome = self._post(token)
            with self.lock:
                self.outcomes.append(outcome)
            if outcome.error == "refused":
                time.sleep(0.05)  # the server is gone; keep knocking, gently

    def _post(self, token: str) -> Outcome:
        outcome = Outcome(key=uuid.uuid4().hex)
        body = {"secret": self.secret, "ttl": "10m", "idempotency_key": outcome.key}
        headers = {**bearer(token), "Connection": "close"}  # a new connection each time
        try:
            outcome.status = requests.post(
                f"{self.url}/v1/leases", json=body, headers=headers, timeout=30
            ).status_code
        except requests.ConnectionError as exc:
            outcome.error = "refused" if _is_refused(exc) else f"dropped: {exc}"
        outcome.finished = time.monotonic()
        return outcome

    def answered(self) -> int:
        with self.lock:
            return sum(o.status is not None for o in self.outcomes)


def _is_refused(exc: BaseException) -> bool:
    """Whether the connection itself was refused (nothing was sent), however deep requests wrapped it."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError):
            return True
        cause = cause.__cause__ or cause.__context__
    return "[Errno 111]" in str(exc)


@dataclass
class Stack:
    url: str
    broker: Broker
    secret: str
    server: subprocess.Popen[bytes]
    log_path: Path


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def stack(request: pytest.FixtureRequest, openbao: OpenBaoServer, tmp_path: Path) -> Iterator[Stack]:
    if request.param == "sqlite":
        database = f"sqlite:///{tmp_path / 'sigterm.db'}"
    else:
        database = request.getfixturevalue("postgres_databases").empty()
    env = transom_env(database, openbao, workers="2", graceful_timeout=str(GRACEFUL_TIMEOUT))
    subprocess.run([*TRANSOM, "db", "upgrade"], env=env, check=True, capture_output=True, timeout=60)
    app = make_app(database, openbao)
    secret = f"sigterm-{uuid.uuid4().hex[:8]}"  # its tokens at Vault are this test's, by their metadata
    with OidcIssuer() as issuer:
        broker = Broker(app, app.test_client(), create_broker_token(app, "admin", "ops"), issuer, openbao)
        broker.register_issuer()
        broker.token_secret(secret)
        broker.policy(secrets=[secret])
        port = free_port()
        log_path = tmp_path / "serve.log"
        with log_path.open("wb") as log:
            server = subprocess.Popen(
                [*TRANSOM, "serve", "--port", str(port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_until_up(url, server)
            yield Stack(url, broker, secret, server, log_path)
        finally:
            if server.poll() is None:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=10)
            runtime_of(app).engine.dispose()


def _vault_tokens_of(vault: OpenBaoServer, secret: str) -> dict[str, str]:
    """Accessor → Transom lease id of every live token Vault holds for ``secret``."""
    client = vault.client()
    accessors = client.list("auth/token/accessors")["data"]["keys"]
    found = {}
    for accessor in accessors:
        meta = client.write_data("auth/token/lookup-accessor", data={"accessor": accessor})["data"]["meta"]
        if meta and meta.get("transom_secret") == secret:
            found[accessor] = meta["transom_lease"]
    return found


def test_sigterm_mid_load_answers_or_refuses_every_request_and_orphans_nothing(
    stack: Stack, openbao: OpenBaoServer
) -> None:
    tokens = [stack.broker.ci_token() for _ in range(400)]
    load = Load(stack.url, tokens, stack.secret)
    threads = [threading.Thread(target=load.run) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 30
        while load.answered() < 10 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert load.answered() >= 10, "the load never got going"
        stopping_at = time.monotonic()
        stack.server.send_signal(signal.SIGTERM)  # the master only, as a container runtime does
        assert stack.server.wait(timeout=GRACEFUL_TIMEOUT + 10) == 0
        stopped_in = time.monotonic() - stopping_at
        time.sleep(0.3)  # a few requests knock on the closed port
    finally:
        load.stop.set()
        for thread in threads:
            thread.join(timeout=40)

    outcomes = load.outcomes
    log = stack.log_path.read_text()
    assert stopped_in < GRACEFUL_TIMEOUT, log[-2000:]
    assert "Worker (pid" not in log or "was sent SIGKILL" not in log  # nobody was killed mid-request
    assert {o.status for o in outcomes if o.status is not None} <= {201, 503}, log[-2000:]
    assert any(o.error == "refused" for o in outcomes)  # the load did outlive the server

    assert [o.error for o in outcomes if o.error not in (None, "refused")] == []
    assert any(o.status == 201 and o.finished > stopping_at for o in outcomes)  # in flight, then finished

    with runtime_of(stack.broker.app).sessions() as session:
        leases = list(session.scalars(select(Lease)))
    assert [lease.id for lease in leases if lease.status == LeaseStatus.ISSUING] == []
    granted = {o.key for o in outcomes if o.status == 201}
    assert {lease.idempotency_key for lease in leases if lease.status == LeaseStatus.ACTIVE} == granted

    at_vault = _vault_tokens_of(openbao, stack.secret)
    active_ids = {lease.id for lease in leases if lease.status == LeaseStatus.ACTIVE}
    assert sorted(at_vault.values()) == sorted(active_ids)  # one live token per active lease, no other
