"""A forked history: two brokers (two databases) on the same Vault transit key, each with its own history.
Each passes its own verification, yet an auditor who saved a checkpoint from one is told by
`transom audit verify --state` that the other is not a continuation of it: which sizes, which roots. A log
that shrank is reported too. Real processes: `transom serve` with its embedded sequencer, and the `transom`
command line."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from app.tlog import note
from tests.e2e.scheduler.worker_processes import PROJECT_ROOT, TRANSOM, worker_env
from tests.support.openbao import OpenBaoServer
from tests.support.processes import free_port

CHECKPOINT_WAIT = 15.0  # the sequencer integrates within a second and signs at most once a second


@dataclass
class ServedBroker:
    url: str
    env: dict[str, str]
    token: str

    def fetch(self, path: str) -> requests.Response:
        return requests.get(self.url + path, headers={"Authorization": f"Bearer {self.token}"}, timeout=10)

    def get(self, path: str) -> requests.Response:
        response = self.fetch(path)
        assert response.status_code == 200, (path, response.status_code, response.text)
        return response

    def record(self, *names: str) -> None:
        """One `token.created` event per name, written by the deployer's command on this broker's database."""
        for name in names:
            _transom(self.env, "tokens", "create", "--name", name, "--role", "auditor")

    def checkpoint_of_everything(self) -> note.Checkpoint:
        """The latest checkpoint once it covers every event recorded so far."""
        deadline = time.monotonic() + CHECKPOINT_WAIT
        while True:
            events = len(self.get("/v1/audit/events?limit=500").json()["items"])
            response = self.fetch("/v1/audit/checkpoint")  # 404 until the first is published
            if response.status_code == 200:
                signed = response.text
                checkpoint = note.parse_checkpoint(signed[: signed.index("\n\n") + 1])
                if checkpoint.size == events:
                    return checkpoint
            assert time.monotonic() < deadline, f"no checkpoint of all {events} events in {CHECKPOINT_WAIT}s"
            time.sleep(0.2)

    def audit_verify(self, key: str, state: Path) -> subprocess.CompletedProcess[str]:
        env = {**self.env, "TRANSOM_URL": self.url, "TRANSOM_TOKEN": self.token}
        return subprocess.run(
            [*TRANSOM, "audit", "verify", "--key", key, "--state", str(state)],
            env=env,
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


StartBroker = Callable[[str], ServedBroker]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def fresh_database(request: pytest.FixtureRequest) -> Callable[[], str]:
    """Makes fresh migrated databases of one kind, SQLite or PostgreSQL."""
    kind = "sqlite_databases" if request.param == "sqlite" else "postgres_databases"
    databases = request.getfixturevalue(kind)
    return databases.fresh  # type: ignore[no-any-return]


@pytest.fixture
def start_broker(
    fresh_database: Callable[[], str], vault: OpenBaoServer, tmp_path: Path
) -> Iterator[StartBroker]:
    """`transom serve` (one worker, embedded scheduler: it runs the sequencer) on a database of its own."""
    servers: list[subprocess.Popen[bytes]] = []

    def start(name: str) -> ServedBroker:
        env = worker_env(fresh_database(), vault, TRANSOM_SCHEDULER="embedded")
        port = free_port()
        with open(tmp_path / f"{name}.log", "wb") as log:
            servers.append(
                subprocess.Popen(
                    [*TRANSOM, "serve", "--port", str(port)],
                    env=env,
                    cwd=PROJECT_ROOT,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # gunicorn's master and worker, stopped together
                )
            )
        url = f"http://127.0.0.1:{port}"
        _wait_until_up(url, servers[-1], tmp_path / f"{name}.log")
        token = _transom(env, "tokens", "create", "--name", f"{name}-auditor", "--role", "auditor")
        return ServedBroker(url, env, token)

    yield start
    for server in servers:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def test_a_second_broker_on_the_same_key_with_another_history_is_reported_as_a_fork(
    start_broker: StartBroker, tmp_path: Path
) -> None:
    first, second = start_broker("first"), start_broker("second")
    first.record("alice", "bob")
    second.record("carol", "dave", "erin", "frank")
    first_checkpoint, second_checkpoint = first.checkpoint_of_everything(), second.checkpoint_of_everything()
    assert first_checkpoint.size < second_checkpoint.size

    # Same Vault key, same origin: an auditor cannot tell the brokers apart by the key they pinned.
    key = first.get("/v1/audit/key").json()["verifier_key"]
    assert second.get("/v1/audit/key").json()["verifier_key"] == key
    for broker in (first, second):
        assert broker.get("/v1/audit/verify").json()["ok"] is True

    state = tmp_path / "first.checkpoint"
    saved = first.audit_verify(key, state)
    assert saved.returncode == 0, saved.stderr
    kept = state.read_text()

    forked = second.audit_verify(key, state)
    assert forked.returncode == 1, forked.stdout
    first_root, second_root = _b64(first_checkpoint.root_hash), _b64(second_checkpoint.root_hash)
    assert (
        "the log was rewritten or forked: "
        f"the checkpoint of size {first_checkpoint.size} (root {first_root}) "
        f"is not a prefix of size {second_checkpoint.size} (root {second_root})"
    ) in forked.stderr
    assert state.read_text() == kept, "the evidence of the fork must stay in the state file"

    # A state saved from the larger log, shown the smaller one: the log shrank.
    larger = tmp_path / "second.checkpoint"
    assert second.audit_verify(key, larger).returncode == 0
    shrunk = first.audit_verify(key, larger)
    assert shrunk.returncode == 1
    assert f"the log shrank from {second_checkpoint.size} to {first_checkpoint.size}" in shrunk.stderr

    # The first broker's own continuation is accepted.
    first.record("grace")
    grown = first.checkpoint_of_everything()
    continued = first.audit_verify(key, state)
    assert continued.returncode == 0, continued.stderr
    assert f"consistent with the saved checkpoint of size {first_checkpoint.size}" in continued.stdout
    assert f"saved the checkpoint of size {grown.size}" in continued.stdout


def _transom(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [*TRANSOM, *args], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _wait_until_up(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert server.poll() is None, f"transom serve exited early:\n{log.read_text()}"
        try:
            if requests.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except requests.RequestException:  # not listening yet
            pass
        time.sleep(0.2)
    raise AssertionError(f"transom serve did not answer within 60 s:\n{log.read_text()}")


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode()
