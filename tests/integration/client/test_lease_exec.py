"""`transom lease exec` against a live broker and the real OpenBao: the command gets the values, and when it
ends — normally, failing, or signalled — every lease is released and the Vault token stops working."""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path

import pytest

from tests.integration.client.conftest import LiveBroker

# The command under the client: records what it saw (and whether the leased Vault token worked while it ran).
CHILD = """
import json, os, signal, sys, time, urllib.request
out = sys.argv[1]
seen = {k: os.environ.get(k) for k in ("DB_PASSWORD", "DB_USER", "TOKEN", "ACCESSOR")}
lookup = urllib.request.Request(os.environ["VAULT_ADDR_FOR_TEST"] + "/v1/auth/token/lookup-self",
                                headers={"X-Vault-Token": os.environ["TOKEN"]})
with urllib.request.urlopen(lookup, timeout=10) as answer:
    seen["token_worked"] = answer.status == 200
signals = []
def on_signal(signum, frame):
    signals.append(signum)
    with open(out + ".signals", "a") as f:
        f.write(f"{signum}\\n")
    if mode == "handle":
        sys.exit(42)
mode = sys.argv[2]
if mode in ("handle", "ignore"):
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
with open(out, "w") as f:
    json.dump(seen, f)
if mode == "exit":
    sys.exit(int(sys.argv[3]))
while True:
    time.sleep(0.05)
"""

SECRETS = ["--secret", "prod-db-static", "--secret", "prod-vault-token"]


def _child(tmp_path: Path, mode: str, *extra: str) -> list[str]:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    return [sys.executable, str(script), str(tmp_path / "seen.json"), mode, *extra]


def _wait_for(path: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists() or not path.read_text():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def _assert_all_released(live: LiveBroker, seen: dict[str, object]) -> None:
    leases = live.leases()
    assert sorted(lease["secret"] for lease in leases) == ["prod-db-static", "prod-vault-token"]
    assert {lease["status"] for lease in leases} == {"released"}
    assert not live.token_works(str(seen["TOKEN"]))


def _assert_no_value_shown(live: LiveBroker, seen: dict[str, object], *outputs: str) -> None:
    for value in (*live.kv_values().values(), seen["TOKEN"]):
        for output in outputs:
            assert str(value) not in output


def test_the_command_sees_the_values_and_the_leases_end_with_it(live: LiveBroker, tmp_path: Path) -> None:
    env = live.env(VAULT_ADDR_FOR_TEST=live.vault.addr)
    done = live.client(
        "lease", "exec", *SECRETS, "--ttl", "10m", "--", *_child(tmp_path, "exit", "0"), env=env
    )

    assert done.returncode == 0, done.stderr
    seen = json.loads((tmp_path / "seen.json").read_text())
    assert seen["DB_PASSWORD"] == live.kv_values()["db_password"]
    assert seen["DB_USER"] == live.kv_values()["db_user"]
    assert seen["token_worked"] is True
    _assert_all_released(live, seen)
    _assert_no_value_shown(live, seen, done.stdout, done.stderr)
    assert "released" in done.stderr


def test_a_failing_command_passes_its_status_on_and_still_releases(live: LiveBroker, tmp_path: Path) -> None:
    env = live.env(VAULT_ADDR_FOR_TEST=live.vault.addr)
    done = live.client("lease", "exec", *SECRETS, "--", *_child(tmp_path, "exit", "7"), env=env)

    assert done.returncode == 7, done.stderr
    seen = json.loads((tmp_path / "seen.json").read_text())
    _assert_all_released(live, seen)
    _assert_no_value_shown(live, seen, done.stdout, done.stderr)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_reaches_the_command_once_then_the_leases_are_released(
    live: LiveBroker, tmp_path: Path, signum: signal.Signals
) -> None:
    env = live.env(VAULT_ADDR_FOR_TEST=live.vault.addr)
    client = live.start_client("lease", "exec", *SECRETS, "--", *_child(tmp_path, "handle"), env=env)
    _wait_for(tmp_path / "seen.json")

    client.send_signal(signum)
    stdout, stderr = client.communicate(timeout=30)

    assert client.returncode == 42, stderr  # the command's own status after handling the signal
    assert (tmp_path / "seen.json.signals").read_text().split() == [str(int(signum))]
    seen = json.loads((tmp_path / "seen.json").read_text())
    _assert_all_released(live, seen)
    _assert_no_value_shown(live, seen, stdout, stderr)


def test_a_command_killed_by_the_forwarded_sigterm_exits_143(live: LiveBroker, tmp_path: Path) -> None:
    env = live.env(VAULT_ADDR_FOR_TEST=live.vault.addr)
    client = live.start_client("lease", "exec", *SECRETS, "--", *_child(tmp_path, "sleep"), env=env)
    _wait_for(tmp_path / "seen.json")

    client.send_signal(signal.SIGTERM)
    _, stderr = client.communicate(timeout=30)

    assert client.returncode == 128 + signal.SIGTERM, stderr
    _assert_all_released(live, json.loads((tmp_path / "seen.json").read_text()))


def test_a_command_that_ignores_the_signal_loses_its_leases_after_the_grace(
    live: LiveBroker, tmp_path: Path
) -> None:
    env = live.env(VAULT_ADDR_FOR_TEST=live.vault.addr)
    client = live.start_client(
        "lease", "exec", *SECRETS, "--grace", "1s", "--", *_child(tmp_path, "ignore"), env=env
    )
    _wait_for(tmp_path / "seen.json")

    client.send_signal(signal.SIGTERM)
    _, stderr = client.communicate(timeout=30)

    assert client.returncode == 128 + signal.SIGTERM
    assert "did not stop in time" in stderr
    _assert_all_released(live, json.loads((tmp_path / "seen.json").read_text()))


def test_a_missing_command_is_127_and_requests_no_lease(live: LiveBroker) -> None:
    done = live.client("lease", "exec", *SECRETS, "--", "/nonexistent/deploy.sh")

    assert done.returncode == 127
    assert "command not found" in done.stderr
    assert live.leases() == []
    assert live.github.requests == []


def test_a_denied_second_secret_releases_the_first_and_never_runs_the_command(
    live: LiveBroker, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    done = live.client(
        "lease",
        "exec",
        "--secret",
        "prod-vault-token",
        "--secret",
        "not-a-secret",
        "--",
        "touch",
        str(marker),
    )

    assert done.returncode == 3
    assert "unknown_secret" in done.stderr
    assert not marker.exists()
    assert [lease["status"] for lease in live.leases()] == ["released"]
