"""The processes under soak: two ``transom serve`` (gunicorn), two ``transom worker``, a private OpenBao, one
scratch PostgreSQL database; started, configured, killed and restarted, stopped."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import IO, Any

import requests
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.db import make_engine, make_session_factory
from tests.e2e.scheduler.worker_processes import PROJECT_ROOT, TRANSOM, WorkerProcess, worker_env
from tests.support.databases import PostgresDatabases
from tests.support.oidc_issuer import OidcIssuer
from tests.support.openbao import DATABASE_MOUNT, DATABASE_ROLE, OpenBaoServer
from tests.support.processes import free_port, proc_stats
from tests.support.soak.options import GUNICORN_WORKERS, PG_PARAMS, SECRETS


def rss_kib(pid: int) -> int | None:
    """VmRSS of a live process in KiB (None: gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def child_pids(pid: int) -> list[int]:
    """The live children of ``pid``, by scanning /proc (gunicorn's workers of its master)."""
    return sorted(child for child, _name, fields in proc_stats() if int(fields[1]) == pid)


class ApiServer:
    """One ``transom serve`` (gunicorn master + workers), in a process group of its own."""

    def __init__(self, name: str, env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self.url = f"http://127.0.0.1:{free_port()}"
        port = self.url.rsplit(":", 1)[1]
        self._log: IO[bytes] = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [*TRANSOM, "serve", "--port", port],
            env={**env, "TRANSOM_WORKERS": str(GUNICORN_WORKERS)},
            cwd=PROJECT_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start; see {self.log_path}")
            with contextlib.suppress(requests.RequestException):
                ready = requests.get(f"{self.url}/readyz", timeout=2).status_code == 200
                if ready and len(child_pids(self.pid)) >= GUNICORN_WORKERS:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready within {timeout:.0f} s; see {self.log_path}")

    def workers(self) -> list[int]:
        return child_pids(self.pid)

    def stop(self, timeout: float = 30.0) -> int | None:
        if self.process.poll() is None:
            os.killpg(self.pid, signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.pid, signal.SIGKILL)
            self.process.wait()
            return None
        finally:
            self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


class SoakCluster:
    """Everything the soak runs against; a context manager that takes it all down again."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self._stack = contextlib.ExitStack()
        self.apis: list[ApiServer] = []
        self.workers: list[WorkerProcess] = []
        self.worker_exits: list[int] = []  # exit codes of workers stopped with SIGTERM at the end
        self.kills = 0
        self.last_kill: float | None = None  # monotonic

    def __enter__(self) -> SoakCluster:
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stack.close()

    def _start(self) -> None:
        stack = self._stack
        self.databases = PostgresDatabases()
        stack.callback(self.databases.drop_all)
        self.database_url = self.databases.fresh()
        self.vault = OpenBaoServer(log_dir=self.log_dir)
        stack.callback(self.vault.drop_database_roles, PG_PARAMS)
        stack.callback(self.vault.stop)
        self.vault.ensure_baseline(PG_PARAMS)
        self.issuer = stack.enter_context(OidcIssuer())
        self.engine: Engine = make_engine(self.database_url, pool_size=2)
        stack.callback(self.engine.dispose)
        self.sessions: sessionmaker[Session] = make_session_factory(self.engine)
        self.env = worker_env(self.database_url, self.vault)
        self.admin_token = subprocess.run(
            [*TRANSOM, "tokens", "create", "--name", "soak-admin", "--role", "admin"],
            env=self.env,
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout.strip()
        stack.callback(self._stop_apis)
        for index in (1, 2):
            self.apis.append(ApiServer(f"api-{index}", self.env, self.log_dir / f"api-{index}.log"))
        for api in self.apis:
            api.wait_ready()
        self._configure()
        stack.callback(self._stop_workers)
        for index in (1, 2):
            self.workers.append(self._start_worker(index, 0))
        for worker in self.workers:
            worker.wait_for_log("sweeper started")

    def _configure(self) -> None:
        kv_path = f"soak/{uuid.uuid4().hex[:8]}"
        self.vault.write_kv(kv_path, {"db_password": f"canary-{uuid.uuid4().hex}"})
        setup: list[tuple[str, dict[str, Any]]] = [
            (
                "/v1/issuers",
                {
                    "name": "github",
                    "issuer": self.issuer.url,
                    "flavor": "github",
                    "audiences": [self.issuer.audience],
                },
            ),
            ("/v1/secrets", {"name": SECRETS["kv"], "kind": "kv", "mount": "secret", "path": kv_path}),
            ("/v1/secrets", {"name": SECRETS["token"], "kind": "token", "policies": ["deploy-prod"]}),
            (
                "/v1/secrets",
                {
                    "name": SECRETS["dynamic"],
                    "kind": "dynamic",
                    "path": f"{DATABASE_MOUNT}/creds/{DATABASE_ROLE}",
                },
            ),
            (
                "/v1/policies",
                {
                    "name": "soak",
                    "issuer": "github",
                    "secrets": list(SECRETS.values()),
                    "repositories": ["acme/payments"],
                    "branches": ["main"],
                    "windows": ["always"],
                    "default_ttl": "15s",
                    "max_ttl": "5m",
                },
            ),
        ]
        headers = {"Authorization": f"Bearer {self.admin_token}"}
        for path, body in setup:
            response = requests.post(self.apis[0].url + path, json=body, headers=headers, timeout=30)
            if response.status_code != 201:
                raise RuntimeError(f"setup POST {path}: {response.status_code} {response.text[:300]}")

    def _start_worker(self, index: int, incarnation: int) -> WorkerProcess:
        return WorkerProcess(self.env, self.log_dir / f"worker-{index}.{incarnation}.log")

    def kill_and_restart_worker(self, index: int) -> None:
        """SIGKILL worker ``index`` (1-based) and start a new one in its place."""
        self.workers[index - 1].kill()
        self.kills += 1
        self.last_kill = time.monotonic()
        self.workers[index - 1] = self._start_worker(index, self.kills)
        self.workers[index - 1].wait_for_log("sweeper started")

    def processes(self) -> dict[str, int]:
        """Name → PID of every broker and worker process now (gunicorn workers numbered by PID order)."""
        found: dict[str, int] = {}
        for api in self.apis:
            found[f"{api.name} master"] = api.pid
            for number, pid in enumerate(api.workers(), start=1):
                found[f"{api.name} worker {number}"] = pid
        for index, worker in enumerate(self.workers, start=1):
            found[f"worker-{index}"] = worker.pid
        return found

    def dead_processes(self) -> list[str]:
        dead = [api.name for api in self.apis if api.process.poll() is not None]
        dead += [f"worker-{i}" for i, w in enumerate(self.workers, 1) if w.process.poll() is not None]
        return dead

    def worker_logs(self) -> dict[str, str]:
        return {p.name: p.read_text(errors="replace") for p in sorted(self.log_dir.glob("worker-*.log"))}

    def _stop_workers(self) -> None:
        for worker in self.workers:
            if worker.process.poll() is None:
                self.worker_exits.append(worker.stop())
            else:
                worker.kill()  # reaps it and closes its log

    def _stop_apis(self) -> None:
        for api in self.apis:
            api.stop()

    def stop_processes(self) -> None:
        """Stop the workers (SIGTERM, exit codes kept) and the API servers before the rest goes."""
        self._stop_workers()
        self._stop_apis()
