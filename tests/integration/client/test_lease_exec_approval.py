"""`transom lease exec` under a policy that needs approval, against a live broker and the real OpenBao: the
client waits on its own, says who must approve and how, and goes on when a person approves from another
process — or exits 3 without running the command when one denies."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.integration.client.conftest import CLIENT, LiveBroker
from tests.integration.client.test_lease_exec import _child
from tests.support.broker import policy_body


def _needs_alice(live: LiveBroker) -> str:
    """The usual policy, with alice's approval; alice's approver token."""
    body = policy_body(approval={"required": 1, "approvers": ["alice"], "timeout": "5m"})
    assert live.broker.admin("PUT", "/v1/policies/deploy-prod", body).status_code == 200
    created = live.broker.create("/v1/tokens", {"name": "alice", "role": "approver", "ci_login": "alice-gh"})
    token: str = created["token"]
    return token


def _pending(live: LiveBroker, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        items = live.broker.admin("GET", "/v1/approvals?status=pending").get_json()["items"]
        if items:
            found: dict[str, Any] = items[0]
            return found
        assert time.monotonic() < deadline, "the client never asked"
        time.sleep(0.1)


def _person(live: LiveBroker, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**live.env(), "TRANSOM_URL": live.url, "TRANSOM_TOKEN": token}
    return subprocess.run([*CLIENT, "approvals", *args], env=env, capture_output=True, text=True, timeout=60)


def test_exec_waits_for_approval_then_runs_with_the_secret_and_releases(
    live: LiveBroker, tmp_path: Path
) -> None:
    alice = _needs_alice(live)
    env = live.env(VAULT_ADDR_FOR_TEST=live.vault.addr)
    client = live.start_client(
        "lease", "exec", "--secret", "prod-vault-token", "--", *_child(tmp_path, "exit", "0"), env=env
    )
    request = _pending(live)
    assert not (tmp_path / "seen.json").exists()

    listed = _person(live, alice, "list")
    assert listed.returncode == 0 and request["id"] in listed.stdout
    approved = _person(live, alice, "approve", request["id"], "--comment", "ship it")
    assert approved.returncode == 0, approved.stderr
    assert "approved" in approved.stdout

    _, stderr = client.communicate(timeout=60)
    assert client.returncode == 0, stderr
    assert f"transom approvals approve {request['id']}" in stderr  # the exact command, shown to people
    assert "alice" in stderr
    seen = json.loads((tmp_path / "seen.json").read_text())
    assert seen["token_worked"] is True
    leases = live.leases()
    assert [lease["status"] for lease in leases] == ["released"]
    assert not live.token_works(str(seen["TOKEN"]))
    shown = _person(live, alice, "show", request["id"])
    assert "used" in shown.stdout and leases[0]["id"] in shown.stdout


def test_exec_exits_3_on_a_denial_without_running_the_command(live: LiveBroker, tmp_path: Path) -> None:
    alice = _needs_alice(live)
    env = live.env(VAULT_ADDR_FOR_TEST=live.vault.addr)
    client = live.start_client(
        "lease", "exec", "--secret", "prod-vault-token", "--", *_child(tmp_path, "exit", "0"), env=env
    )
    request = _pending(live)
    denied = _person(live, alice, "deny", request["id"], "--comment", "not now")
    assert denied.returncode == 0, denied.stderr

    _, stderr = client.communicate(timeout=60)
    assert client.returncode == 3, stderr
    assert "approval_denied" in stderr
    assert not (tmp_path / "seen.json").exists()
    assert live.leases() == []


def test_self_approval_from_the_command_line_is_refused(live: LiveBroker) -> None:
    _needs_alice(live)
    octo = live.broker.create("/v1/tokens", {"name": "octo", "role": "admin", "ci_login": "octocat"})["token"]
    assert live.broker.request_lease("prod-vault-token").status_code == 202
    request = _pending(live)
    refused = _person(live, octo, "approve", request["id"])
    assert refused.returncode != 0
    assert "self_approval" in refused.stderr


def test_exec_gives_up_at_its_approval_timeout(live: LiveBroker, tmp_path: Path) -> None:
    _needs_alice(live)
    env = live.env(VAULT_ADDR_FOR_TEST=live.vault.addr)
    done = live.client(
        "lease",
        "exec",
        "--secret",
        "prod-vault-token",
        "--approval-timeout",
        "3s",
        "--",
        *_child(tmp_path, "exit", "0"),
        env=env,
    )
    assert done.returncode == 3, done.stderr
    assert "approval-timeout" in done.stderr
    assert not (tmp_path / "seen.json").exists()
