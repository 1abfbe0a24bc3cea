"""`pip install <transom>` with no extras, in a fresh venv, is the CI client alone: no Flask, SQLAlchemy or
hvac there, and its `transom lease exec` leases from a live broker and the real OpenBao, and releases at
the end; asked for the broker's commands, it names the install they need."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.client_wheel import build_wheel, fresh_venv, outside_env
from tests.integration.client.conftest import LiveBroker

pytestmark = [pytest.mark.slow, pytest.mark.vault]

SERVER_MODULES = ("flask", "sqlalchemy", "hvac", "alembic", "apscheduler", "gunicorn", "psycopg")

# The command under `transom lease exec`: writes what it saw, with the venv's own interpreter.
CHILD = """
import json, os, sys
json.dump({k: os.environ.get(k) for k in ("DB_PASSWORD", "DB_USER", "TOKEN")}, open(sys.argv[1], "w"))
"""


class ClientVenv:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.python = root / "bin" / "python"
        self.transom = root / "bin" / "transom"

    def run(self, *args: str | Path, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(arg) for arg in args],
            env=env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


@pytest.fixture(scope="module")
def client_venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClientVenv]:
    """A fresh venv with the project's wheel installed, no extras."""
    where = tmp_path_factory.mktemp("client-venv")
    wheel = build_wheel(where / "wheels")
    client = ClientVenv(fresh_venv(where / "venv").parent)
    installed = client.run(
        client.python, "-m", "pip", "install", "--quiet", wheel, env=outside_env(), cwd=where
    )
    assert installed.returncode == 0, installed.stderr
    yield client


def test_the_client_install_has_no_server_package(client_venv: ClientVenv, tmp_path: Path) -> None:
    probe = "import importlib.util as u, json; print(json.dumps({m: u.find_spec(m) is not None for m in %r}))"
    done = client_venv.run(
        client_venv.python, "-c", probe % (SERVER_MODULES,), env=outside_env(), cwd=tmp_path
    )

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == dict.fromkeys(SERVER_MODULES, False)


@pytest.mark.parametrize("command", ["serve", "worker", "db", "tokens"])
def test_a_server_command_names_the_install_it_needs(
    client_venv: ClientVenv, tmp_path: Path, command: str
) -> None:
    done = client_venv.run(client_venv.transom, command, "--help", env=outside_env(), cwd=tmp_path)

    assert done.returncode == 2
    assert done.stderr == f"transom {command}: this command needs the broker: pip install 'transom[server]'\n"


def test_lease_exec_from_the_client_install(
    client_venv: ClientVenv, live: LiveBroker, tmp_path: Path
) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    seen_file = tmp_path / "seen.json"
    env = {k: v for k, v in live.env().items() if k in outside_env() or k not in os.environ}

    done = client_venv.run(
        client_venv.transom,
        "lease", "exec", "--secret", "prod-db-static", "--secret", "prod-vault-token", "--ttl", "5m",
        "--", client_venv.python, script, seen_file,
        env=env,
        cwd=tmp_path,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    seen = json.loads(seen_file.read_text())
    assert seen["DB_PASSWORD"] == live.kv_values()["db_password"]
    assert seen["DB_USER"] == live.kv_values()["db_user"]
    leases = live.leases()
    assert {lease["status"] for lease in leases} == {"released"} and len(leases) == 2
    assert not live.token_works(seen["TOKEN"])
