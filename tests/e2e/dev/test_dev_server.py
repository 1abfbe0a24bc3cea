"""`transom dev` as a user runs it: one command starts OpenBao, the demo issuer, the scheduler and the API;
a demo token gets a lease (and `transom lease exec` works against it); SIGINT stops every process it
started; a token minted before a restart still works after it."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from app.settings import PROJECT_ROOT
from tests.support.processes import free_port

pytestmark = pytest.mark.slow

TRANSOM = [sys.executable, "-c", "from app.cli import main; main(prog_name='transom')"]
START_TIMEOUT = 60.0


def _descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _refuses(url: str) -> bool:
    try:
        requests.get(url, timeout=2)
    except requests.ConnectionError:
        return True
    return False


@dataclass
class DevRun:
    process: subprocess.Popen[bytes]
    url: str
    banner: str
    stderr_path: Path
    env: dict[str, str]

    def field(self, pattern: str) -> str:
        match = re.search(pattern, self.banner)
        assert match, f"{pattern!r} not in the banner:\n{self.banner}"
        return match.group(1)

    def transom(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*TRANSOM, *args],
            env={**self.env, **env},
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


@contextmanager
def dev_server(instance: Path, tmp_path: Path, name: str) -> Iterator[DevRun]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRANSOM_", "GITHUB_", "ACTIONS_"))}
    env["TRANSOM_INSTANCE_DIR"] = str(instance)
    stdout_path, stderr_path = tmp_path / f"{name}.out", tmp_path / f"{name}.err"
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        process = subprocess.Popen(
            [*TRANSOM, "dev", "--port", str(port)], env=env, cwd=PROJECT_ROOT, stdout=out, stderr=err
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while "Try it" not in stdout_path.read_text():
            assert process.poll() is None, f"transom dev exited:\n{stderr_path.read_text()}"
            assert time.monotonic() < deadline, f"transom dev did not start:\n{stderr_path.read_text()}"
            time.sleep(0.1)
        yield DevRun(process, url, stdout_path.read_text(), stderr_path, env)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _stop(run: DevRun, signum: int = signal.SIGINT) -> None:
    run.process.send_signal(signum)
    assert run.process.wait(timeout=30) == 0, run.stderr_path.read_text()
    assert "transom dev: stopped" in run.stderr_path.read_text()


def test_transom_dev_serves_leases_and_stops_everything_on_sigint(tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    with dev_server(instance, tmp_path, "first") as run:
        started = _descendants(run.process.pid)
        openbao_addr = run.field(r"OpenBao \(dev mode\):\s+(\S+)")
        issuer_url = run.field(r"demo OIDC issuer:\s+(\S+)")
        assert any("bao" in Path(f"/proc/{pid}/cmdline").read_text() for pid in started)
        assert requests.get(f"{run.url}/healthz", timeout=5).json() == {"status": "ok"}
        assert requests.get(f"{run.url}/readyz", timeout=5).status_code == 200

        minted = run.transom("dev", "token", "--repo", "acme/app", "--branch", "main")
        assert minted.returncode == 0, minted.stderr
        token = minted.stdout.strip()
        assert minted.stdout.count("\n") == 1 and token.count(".") == 2  # the token alone on stdout
        granted = requests.post(
            f"{run.url}/v1/leases",
            json={"secret": "demo-db", "ttl": "5m"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert granted.status_code == 201, granted.text
        assert set(granted.json()["data"]) == {"db_user", "db_password"}

        # The demo's policy: a pull request from a feature branch on a self-hosted runner is denied.
        denied_token = run.transom(
            "dev", "token", "--branch", "feature/x", "--event", "pull_request", "--runner", "self-hosted"
        ).stdout.strip()
        denied = run.transom(
            "lease",
            "request",
            "--secret",
            "demo-db",
            "--token-env",
            "DEMO_TOKEN",
            TRANSOM_URL=run.url,
            DEMO_TOKEN=denied_token,
        )
        assert denied.returncode == 3
        for code in ("branch_not_allowed", "runner_not_allowed", "event_not_allowed"):
            assert code in denied.stderr

        # The walkthrough's `lease exec`, with the token command the banner prints.
        token_command = shlex.join([*TRANSOM, "dev", "token", "--repo", "acme/app", "--branch", "main"])
        ran = run.transom(
            "lease",
            "exec",
            "--secret",
            "demo-vault-token",
            "--",
            "sh",
            "-c",
            'test -n "$TOKEN" && echo token-present',
            TRANSOM_URL=run.url,
            TRANSOM_ID_TOKEN_COMMAND=token_command,
        )
        assert ran.returncode == 0, ran.stderr
        assert "token-present" in ran.stdout
        admin_token = run.field(r"admin token:\s+(trn_\S+)")
        leases = requests.get(
            f"{run.url}/v1/leases?secret=demo-vault-token",
            headers={"Authorization": f"Bearer {admin_token}"},
            timeout=10,
        ).json()["items"]
        assert [lease["status"] for lease in leases] == ["released"]

        _stop(run)

        assert not [pid for pid in started | {run.process.pid} if _alive(pid)]
        for url in (run.url, openbao_addr, issuer_url):
            assert _refuses(url)


def test_a_token_minted_before_a_restart_works_after_it(tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    with dev_server(instance, tmp_path, "first") as run:
        first_issuer = run.field(r"demo OIDC issuer:\s+(\S+)")
        admin_token = run.field(r"admin token:\s+(trn_\S+)")
        token = run.transom("dev", "token").stdout.strip()
        started = _descendants(run.process.pid)
        _stop(run, signal.SIGTERM)
        assert not [pid for pid in started if _alive(pid)]

    with dev_server(instance, tmp_path, "second") as run:
        assert run.field(r"demo OIDC issuer:\s+(\S+)") == first_issuer  # the same port again, so the same iss
        assert run.field(r"admin token:\s+(trn_\S+)") == admin_token  # scripts keep working too
        granted = requests.post(
            f"{run.url}/v1/leases",
            json={"secret": "demo-db"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert granted.status_code == 201, granted.text
        _stop(run)


def test_dev_token_before_any_start_says_what_to_do(tmp_path: Path) -> None:
    env = {**os.environ, "TRANSOM_INSTANCE_DIR": str(tmp_path / "empty")}
    done = subprocess.run(
        [*TRANSOM, "dev", "token"], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 1
    assert "start `transom dev` once first" in done.stderr
    assert done.stdout == ""
