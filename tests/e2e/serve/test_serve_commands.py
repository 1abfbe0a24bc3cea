"""The deployer's commands as processes: db upgrade, tokens create, serve (gunicorn)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.openbao import OpenBaoServer
from tests.support.processes import free_port, transom_env

TRANSOM = [sys.executable, "-m", "app.cli"]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'serve.db'}"
    return request.getfixturevalue("postgres_databases").empty()  # type: ignore[no-any-return]


@pytest.fixture
def served(empty_database: str, openbao: OpenBaoServer) -> Iterator[tuple[str, dict[str, str]]]:
    env = transom_env(empty_database, openbao)
    subprocess.run([*TRANSOM, "db", "upgrade"], env=env, check=True, capture_output=True, timeout=60)
    port = free_port()
    server = subprocess.Popen(
        [*TRANSOM, "serve", "--port", str(port)],
        env={**env, "TRANSOM_WORKERS": "2"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, server)
        yield url, env
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        assert server.stderr is not None
        server.stderr.close()


def _wait_until_up(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError("transom serve exited early")
        try:
            if requests.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except requests.RequestException:  # not listening yet, or still loading the app
            time.sleep(0.2)
    raise AssertionError("transom serve did not answer within 60 s")


def test_serve_under_gunicorn_with_a_cli_minted_token(served: tuple[str, dict[str, str]]) -> None:
    url, env = served
    created = subprocess.run(
        [*TRANSOM, "tokens", "create", "--name", "ops", "--role", "admin"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    token = created.stdout.strip()
    assert token.startswith("trn_") and "\n" not in token  # the token alone on stdout
    assert requests.get(f"{url}/readyz", timeout=5).json() == {"database": "ok", "vault": "ok"}
    listed = requests.get(f"{url}/v1/tokens", headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert listed.status_code == 200 and listed.json()["items"][0]["name"] == "ops"
    # An oversized CI token reaches the app and gets problem JSON, not gunicorn's bare 400.
    huge = requests.post(
        f"{url}/v1/leases",
        json={"secret": "x"},
        headers={"Authorization": "Bearer " + "a" * 20_000},
        timeout=5,
    )
    assert huge.status_code == 401
    assert huge.headers["Content-Type"] == "application/problem+json"
    assert huge.json()["reasons"][0]["code"] == "malformed_token"


def test_a_bad_setting_fails_at_start_naming_it(openbao: OpenBaoServer, tmp_path: Path) -> None:
    env = {**transom_env(f"sqlite:///{tmp_path / 'x.db'}", openbao), "TRANSOM_SCHEDULER": "sometimes"}
    result = subprocess.run([*TRANSOM, "serve"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "scheduler" in result.stderr
    assert "Traceback" not in result.stderr
