"""Real `transom serve` and `transom worker` processes on one PostgreSQL database and the test OpenBao, set
up as a deployer would (an issuer, a kv secret, a policy), granting leases to the test issuer's CI tokens."""

from __future__ import annotations

import subprocess
import threading
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import requests

from tests.e2e.scheduler.worker_processes import PROJECT_ROOT, TRANSOM, WorkerProcess, worker_env
from tests.support.oidc_issuer import OidcIssuer
from tests.support.openbao import OpenBaoServer
from tests.support.soak.cluster import ApiServer

SECRET = "ledger-kv"


class Fleet:
    """``apis`` API servers and ``workers`` workers; stop() (or the ``with`` block's end) takes them down."""

    def __init__(
        self,
        database_url: str,
        vault: OpenBaoServer,
        issuer: OidcIssuer,
        log_dir: Path,
        *,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.vault = vault
        self.issuer = issuer
        self.log_dir = log_dir
        self.env = dict(env) if env is not None else worker_env(database_url, vault)
        self.apis: list[ApiServer] = []
        self.workers: list[WorkerProcess] = []
        self._stack = ExitStack()
        self._local = threading.local()

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stack.close()

    # -- processes ------------------------------------------------------------------------------------------

    def start_apis(self, count: int) -> None:
        started = [
            ApiServer(f"api-{len(self.apis) + i}", self.env, self.log_dir / f"api-{len(self.apis) + i}.log")
            for i in range(count)
        ]
        for api in started:
            self._stack.callback(api.stop)
        self.apis += started
        for api in started:
            api.wait_ready()

    def start_worker(self, *args: str) -> WorkerProcess:
        worker = WorkerProcess(self.env, self.log_dir / f"worker-{len(self.workers)}.log", *args)
        self._stack.callback(_kill_if_running, worker)
        self.workers.append(worker)
        return worker

    # -- setup ----------------------------------------------------------------------------------------------

    def broker_token(self, role: str) -> str:
        return subprocess.run(
            [*TRANSOM, "tokens", "create", "--name", f"ledger-{role}-{uuid.uuid4().hex[:6]}", "--role", role],
            env=self.env,
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout.strip()

    def configure(self) -> None:
        """The issuer as ``github``, the kv secret ``ledger-kv`` and a policy granting it to acme/payments."""
        admin = self.broker_token("admin")
        kv_path = f"ledger/{uuid.uuid4().hex[:8]}"
        self.vault.write_kv(kv_path, {"password": f"canary-{uuid.uuid4().hex}"})
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
            ("/v1/secrets", {"name": SECRET, "kind": "kv", "mount": "secret", "path": kv_path}),
            (
                "/v1/policies",
                {
                    "name": "ledger",
                    "issuer": "github",
                    "secrets": [SECRET],
                    "repositories": ["acme/payments"],
                    "branches": ["main"],
                    "windows": ["always"],
                    "max_ttl": "1h",
                },
            ),
        ]
        for path, body in setup:
            response = requests.post(
                self.apis[0].url + path, json=body, headers={"Authorization": f"Bearer {admin}"}, timeout=30
            )
            assert response.status_code == 201, (path, response.status_code, response.text[:300])

    # -- load -----------------------------------------------------------------------------------------------

    def _http(self) -> requests.Session:
        http = getattr(self._local, "http", None)
        if http is None:
            http = self._local.http = requests.Session()
        return http

    def grant(self, number: int) -> int:
        """One lease, on API server ``number % len(apis)``, for a fresh CI token; the HTTP status."""
        token = self.issuer.mint(
            claims=self.issuer.github_claims(run_id=f"{number}{uuid.uuid4().int % 10**9}")
        )
        response = self._http().post(
            f"{self.apis[number % len(self.apis)].url}/v1/leases",
            json={"secret": SECRET, "ttl": "30m"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
        return response.status_code

    def grant_many(self, count: int, concurrency: int, first: int = 0) -> list[int]:
        with ThreadPoolExecutor(concurrency) as pool:
            return list(pool.map(self.grant, range(first, first + count)))

    def audit(self, token: str, path: str, **params: Any) -> requests.Response:
        return self._http().get(
            f"{self.apis[0].url}{path}",
            params=params,
            headers={"Authorization": f"Bearer {token}"},
            timeout=120,
        )


def _kill_if_running(worker: WorkerProcess) -> None:
    if worker.process.poll() is None:
        worker.kill()
