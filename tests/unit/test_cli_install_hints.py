"""A client-only install (`pip install transom`) asked for a command it cannot run names the install that can,
decided from which packages are present, without importing any of them."""

from __future__ import annotations

import subprocess
import sys

import pytest

from app.cli import COMMANDS, NEEDS, SERVER_MODULES, missing_install

CLIENT_ONLY = {"click", "requests"}


def client_only(module: str) -> bool:
    return module in CLIENT_ONLY


@pytest.mark.parametrize("command", ["serve", "worker", "db", "tokens", "apply", "leases", "windows"])
def test_a_server_command_asks_for_the_broker(command: str) -> None:
    assert (
        missing_install(command, client_only)
        == "this command needs the broker: pip install 'transom[server]'"
    )


def test_dev_asks_for_the_broker_and_openbao() -> None:
    assert missing_install("dev", client_only) == (
        "this command needs the broker: pip install 'transom[server,dev]'"
    )


def test_audit_asks_only_for_cryptography() -> None:
    assert missing_install("audit", client_only) == (
        "this command needs cryptography: pip install 'transom[audit]'"
    )
    assert missing_install("audit", lambda module: module in {*CLIENT_ONLY, "cryptography"}) is None


def test_the_ci_client_runs_on_the_base_install() -> None:
    assert missing_install("lease", client_only) is None
    assert missing_install("policies", client_only) is None


def test_one_missing_server_package_is_enough_to_ask() -> None:
    all_but_hvac = {*CLIENT_ONLY, *SERVER_MODULES} - {"hvac"}
    assert missing_install("serve", lambda module: module in all_but_hvac) is not None
    assert missing_install("serve", lambda module: module in {*all_but_hvac, "hvac"}) is None


def test_every_needs_entry_is_a_command() -> None:
    assert set(NEEDS) <= set(COMMANDS)


def test_the_full_install_lists_every_command_with_its_help() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "from app.cli import main; main(['--help'], prog_name='transom')"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "pip install" not in done.stdout
    assert "Serve the API with gunicorn" in done.stdout
