"""The soak: Transom as deployed, under mixed lease load for a long while, then audited end to end.

Two ``transom serve`` (gunicorn, 2 workers each) and two ``transom worker`` processes share one scratch
PostgreSQL database; a private OpenBao dev server (so no other test's tokens are in its inventory) runs the
database engine on the same PostgreSQL; the test OIDC issuer is registered as ``github``. A bounded pool of
client threads requests leases of three kinds (``kv``, ``token``, ``dynamic`` at ``database/creds/deployer``)
with TTLs of 5-30 s, each request to either API process at random, and follows a plan per lease: let it
expire, release it, renew then release or let expire, an admin revoke, or a renew/release sent at the very
instant it expires (the race with the workers, where 409 is a correct answer). One worker is SIGKILLed and
started again every ``kill_every`` seconds; every ``snapshot_every`` seconds OpenBao's live credentials are
compared with the database.

The load stops after ``duration`` seconds or ``leases`` lease requests; the workers then get until the last
expiry plus a claim timeout and a margin to end everything, and the checks run (``_check``). The result is a
:class:`SoakReport` (``render()`` gives Markdown, ``ok`` the verdict). ``scripts/soak.py`` and the short test
both call :func:`run_soak`.

Secret values (tokens, passwords, kv values) stay in the clients' memory: nothing here prints or logs them.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import random
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import psycopg
import requests
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from app.audit.ledger import verify_chain
from app.audit.models import AuditEvent
from app.db import make_engine, make_session_factory
from app.leases.ending import END_ACTIONS
from app.leases.models import Lease, LeaseStatus
from app.scheduler.revocations import CLAIM_TIMEOUT
from tests.e2e.scheduler.worker_processes import PROJECT_ROOT, TRANSOM, WorkerProcess, worker_env
from tests.support.databases import PG_HOST, PG_PORT, PG_USER, PostgresDatabases
from tests.support.oidc_issuer import OidcIssuer
from tests.support.openbao import DATABASE_MOUNT, DATABASE_ROLE, OpenBaoServer
from tests.support.processes import free_port

PG_PARAMS: dict[str, Any] = {"host": PG_HOST, "port": PG_PORT, "user": PG_USER, "dbname": "postgres"}

TTL_RANGE = (5, 30)  # seconds, for grants and renewals alike
SECRETS = {"kv": "soak-kv", "token": "soak-token", "dynamic": "soak-db"}
KIND_WEIGHTS = {"kv": 4, "token": 4, "dynamic": 2}
PLAN_WEIGHTS = {
    "expire": 30,  # nothing: the workers end it
    "release": 30,
    "renew-release": 15,
    "renew-expire": 10,
    "edge": 10,  # renew or release at expires_at ± 0.5 s: races the workers
    "revoke": 5,  # an admin revokes it
}
EDGE_JITTER = 0.5
# A renew or release sent this long before expires_at must not find the lease ended.
EARLY_MARGIN = 1.0
EXPECTED = {
    "issue": {201},
    "renew": {200, 409},
    "release": {200, 202, 409},
    "revoke": {200, 202, 409},
}
GUNICORN_WORKERS = 2
RSS_GROWTH_FRACTION = 0.5
RSS_GROWTH_FLOOR_KIB = 60 * 1024
RSS_SAMPLE_EVERY = 5.0
DRAIN_MARGIN = 15.0  # seconds beyond the last expiry plus a claim timeout
SETTLE_MARGIN = 2.0  # after everything has ended, before the checks
HTTP_TIMEOUT = 30.0
ENDED = tuple(s.value for s in LeaseStatus if s.ended)
LOG_ERROR_MARKERS = ("Traceback", " ERROR ", "[ERROR]", "[CRITICAL]")


@dataclass(frozen=True, slots=True)
class SoakOptions:
    duration: float = 1200.0  # seconds of load
    leases: int | None = None  # stop after this many lease requests (None: duration only)
    threads: int = 8
    kill_every: float = 180.0  # seconds between SIGKILLs of a worker (0: never)
    rate: float | None = None  # lease requests per second at most (None: as fast as the threads go)
    warmup: float | None = None  # seconds before the RSS baseline (None: a tenth of duration, 5..60)
    snapshot_every: float = 30.0  # seconds between Vault-vs-database snapshots during the load
    log_dir: Path | None = None  # process logs (None: a new temporary directory, kept)
    seed: int | None = None

    @property
    def warmup_seconds(self) -> float:
        if self.warmup is not None:
            return self.warmup
        return min(60.0, max(5.0, self.duration / 10))


# ------------------------------------------------------------------------------------------ processes


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
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields_after_comm = stat.rsplit(")", 1)[1].split()
        if int(fields_after_comm[1]) == pid:
            found.append(int(entry.name))
    return sorted(found)


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


# ----------------------------------------------------------------------------------------------- load


@dataclass(eq=False)
class ClientLease:
    id: str
    kind: str
    run_id: str
    plan: str
    expires_at: float  # epoch seconds, as the server last said
    token: str | None = field(default=None, repr=False)  # the Vault token of a token-kind lease
    username: str | None = None  # the PostgreSQL role of a dynamic lease


@dataclass(order=True)
class Step:
    due: float  # monotonic
    seq: int
    op: str = field(compare=False)  # renew | release | revoke
    lease: ClientLease = field(compare=False)
    edge: bool = field(compare=False, default=False)


@dataclass
class Stats:
    """What the clients saw; every method is thread-safe."""

    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    latencies: dict[str, list[float]] = field(default_factory=dict)
    granted_by_kind: Counter[str] = field(default_factory=Counter)
    granted_by_api: Counter[str] = field(default_factory=Counter)
    requests_by_api: Counter[str] = field(default_factory=Counter)
    plans: Counter[str] = field(default_factory=Counter)
    granted_ids: set[str] = field(default_factory=set)
    suspects: set[str] = field(default_factory=set)  # leases with an unexpected answer: their story is told
    unexpected: list[str] = field(default_factory=list)  # op, status, problem excerpt (never a 2xx body)
    transport_errors: list[str] = field(default_factory=list)
    early_conflicts: list[str] = field(default_factory=list)
    edge_conflicts: int = 0
    canaries: int = 0
    canary_failures: list[str] = field(default_factory=list)
    issued: int = 0  # issue requests answered (any status)

    def record(self, op: str, api: str, status: int, seconds: float) -> None:
        with self.lock:
            self.statuses[(op, status)] += 1
            self.latencies.setdefault(op, []).append(seconds)
            self.requests_by_api[api] += 1
            if op == "issue":
                self.issued += 1

    def note(self, bucket: list[str], text: str, lease_id: str | None = None) -> None:
        with self.lock:
            if len(bucket) < 50:
                bucket.append(text)
            if lease_id is not None and len(self.suspects) < 20:
                self.suspects.add(lease_id)

    def granted(self, lease: ClientLease, api: str) -> None:
        with self.lock:
            self.granted_ids.add(lease.id)
            self.granted_by_kind[lease.kind] += 1
            self.granted_by_api[api] += 1
            self.plans[lease.plan] += 1

    def count(self, attribute: str) -> None:
        with self.lock:
            setattr(self, attribute, getattr(self, attribute) + 1)


class Canary:
    """Proof that a credential stopped working the moment its release or revoke returned 200."""

    def __init__(self, vault_addr: str) -> None:
        self._vault_addr = vault_addr
        self._pg_lock = threading.Lock()
        self._pg = psycopg.connect(**PG_PARAMS, autocommit=True)

    def close(self) -> None:
        self._pg.close()

    def still_works(self, http: requests.Session, lease: ClientLease) -> bool:
        if lease.kind == "token" and lease.token:
            response = http.get(
                f"{self._vault_addr}/v1/auth/token/lookup-self",
                headers={"X-Vault-Token": lease.token},
                timeout=HTTP_TIMEOUT,
            )
            return response.status_code != 403
        if lease.kind == "dynamic" and lease.username:
            with self._pg_lock:
                row = self._pg.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (lease.username,))
                return row.fetchone() is not None
        return False


class LoadDriver:
    """``threads`` client threads; each runs whichever scheduled step is due, else starts a new lease."""

    def __init__(self, cluster: SoakCluster, options: SoakOptions, stats: Stats) -> None:
        self._cluster = cluster
        self._options = options
        self._stats = stats
        self._urls = {api.name: api.url for api in cluster.apis}
        self._canary = Canary(cluster.vault.addr)
        self._cond = threading.Condition()
        self._heap: list[Step] = []
        self._seq = itertools.count()
        self._started = 0
        self._next_start = 0.0
        self._stopping = False
        base = options.seed if options.seed is not None else random.randrange(2**32)
        self.seed = base
        self._threads = [
            threading.Thread(target=self._run, args=(random.Random(base + i),), name=f"soak-client-{i}")
            for i in range(options.threads)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """No new leases, no further steps; wait for the requests in flight."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join()
        self._canary.close()

    @property
    def requested_all(self) -> bool:
        limit = self._options.leases
        return limit is not None and self._stats.issued >= limit

    # -- the client threads -------------------------------------------------------------------------------

    def _run(self, rng: random.Random) -> None:
        sessions: dict[str, requests.Session] = {}

        def http(key: str) -> requests.Session:
            if key not in sessions:
                sessions[key] = requests.Session()
            return sessions[key]

        try:
            while (job := self._next_job()) is not None:
                try:
                    if isinstance(job, Step):
                        self._step(http, rng, job)
                    else:
                        self._issue(http, rng)
                except Exception as exc:  # an answer the client cannot read: reported, and the load goes on
                    lease_id = job.lease.id if isinstance(job, Step) else None
                    note = f"client failed on {getattr(job, 'op', 'issue')} {lease_id or ''}: {exc!r}"[:300]
                    self._stats.note(self._stats.transport_errors, note, lease_id)
        finally:
            for session in sessions.values():
                session.close()

    def _next_job(self) -> Step | str | None:
        limit, rate = self._options.leases, self._options.rate
        with self._cond:
            while True:
                now = time.monotonic()
                if self._heap and self._heap[0].due <= now:
                    return heapq.heappop(self._heap)
                if self._stopping:
                    return None
                wait = min(self._heap[0].due - now, 0.25) if self._heap else 0.25
                if limit is None or self._started < limit:
                    if rate is None or now >= self._next_start:
                        self._started += 1
                        if rate is not None:
                            self._next_start = max(self._next_start, now) + 1 / rate
                        return "new"
                    wait = min(wait, self._next_start - now)
                self._cond.wait(max(0.001, wait))

    def _schedule(self, step: Step) -> None:
        with self._cond:
            heapq.heappush(self._heap, step)
            self._cond.notify()

    def _at(self, epoch: float) -> float:
        return time.monotonic() + (epoch - time.time())

    def _ci_token(self, run_id: str) -> str:
        issuer = self._cluster.issuer
        return issuer.mint(claims=issuer.github_claims(run_id=run_id))

    def _post(
        self,
        http: Callable[[str], requests.Session],
        rng: random.Random,
        op: str,
        path: str,
        body: dict[str, Any] | None,
        bearer: str,
        lease_id: str | None = None,
    ) -> tuple[str, requests.Response | None]:
        api = rng.choice(sorted(self._urls))
        started = time.perf_counter()
        try:
            response = http(api).post(
                self._urls[api] + path,
                json=body,
                headers={"Authorization": f"Bearer {bearer}"},
                timeout=HTTP_TIMEOUT,
            )
        except requests.RequestException as exc:
            note = f"{op} {lease_id or ''} via {api}: {type(exc).__name__}"
            self._stats.note(self._stats.transport_errors, note, lease_id)
            return api, None
        self._stats.record(op, api, response.status_code, time.perf_counter() - started)
        if response.status_code not in EXPECTED[op]:
            excerpt = response.text[:300] if response.status_code >= 300 else "(body withheld)"
            note = f"{op} {lease_id or ''} via {api}: {response.status_code} {excerpt}"
            self._stats.note(self._stats.unexpected, note, lease_id)
        return api, response

    def _issue(self, http: Callable[[str], requests.Session], rng: random.Random) -> None:
        kind = rng.choices(list(KIND_WEIGHTS), weights=list(KIND_WEIGHTS.values()))[0]
        run_id = str(uuid.uuid4().int % 10**15)
        body = {"secret": SECRETS[kind], "ttl": rng.randint(*TTL_RANGE)}
        api, response = self._post(http, rng, "issue", "/v1/leases", body, self._ci_token(run_id))
        if response is None or response.status_code != 201:
            return
        granted = response.json()
        data = granted.get("data") or {}
        lease = ClientLease(
            id=granted["id"],
            kind=kind,
            run_id=run_id,
            plan=rng.choices(list(PLAN_WEIGHTS), weights=list(PLAN_WEIGHTS.values()))[0],
            expires_at=_epoch(granted["expires_at"]),
            token=data.get("token") if kind == "token" else None,
            username=data.get("username") if kind == "dynamic" else None,
        )
        self._stats.granted(lease, api)
        self._plan_first(lease, rng)

    def _plan_first(self, lease: ClientLease, rng: random.Random) -> None:
        remaining = lease.expires_at - time.time()
        soon = time.monotonic() + rng.uniform(0.3, max(0.3, 0.6 * remaining))
        if lease.plan in ("release", "revoke"):
            self._schedule(Step(soon, next(self._seq), lease.plan, lease))
        elif lease.plan.startswith("renew"):
            self._schedule(Step(soon, next(self._seq), "renew", lease))
        elif lease.plan == "edge":
            at = self._at(lease.expires_at + rng.uniform(-EDGE_JITTER, EDGE_JITTER))
            self._schedule(Step(at, next(self._seq), rng.choice(("renew", "release")), lease, edge=True))

    def _step(self, http: Callable[[str], requests.Session], rng: random.Random, step: Step) -> None:
        lease = step.lease
        sent_at = time.time()
        path = f"/v1/leases/{lease.id}/{step.op}"
        body: dict[str, Any] | None = None
        if step.op == "revoke":
            body, bearer = {"reason": "soak"}, self._cluster.admin_token
        else:
            bearer = self._ci_token(lease.run_id)
            if step.op == "renew":
                body = {"ttl": rng.randint(*TTL_RANGE)}
        api, response = self._post(http, rng, step.op, path, body, bearer, lease.id)
        if response is None:
            return
        status = response.status_code
        if status == 409:
            if step.edge:
                self._stats.count("edge_conflicts")
            elif sent_at < lease.expires_at - EARLY_MARGIN:
                ahead = lease.expires_at - sent_at
                self._stats.note(
                    self._stats.early_conflicts,
                    f"{step.op} of {lease.id} via {api} {ahead:.1f} s before expires_at: 409",
                    lease.id,
                )
            return
        if step.op == "renew" and status == 200:
            lease.expires_at = _epoch(response.json()["expires_at"])
            if lease.plan == "renew-release":
                remaining = lease.expires_at - time.time()
                due = time.monotonic() + rng.uniform(0.3, max(0.3, 0.8 * remaining))
                self._schedule(Step(due, next(self._seq), "release", lease))
        elif step.op in ("release", "revoke") and status == 200 and lease.kind != "kv":
            self._stats.count("canaries")
            try:
                alive = self._canary.still_works(http("vault"), lease)
            except (requests.RequestException, psycopg.Error) as exc:
                self._stats.note(self._stats.transport_errors, f"canary of {lease.id}: {type(exc).__name__}")
                return
            if alive:
                self._stats.note(
                    self._stats.canary_failures,
                    f"{lease.kind} credential of {lease.id} still works after {step.op} returned 200",
                    lease.id,
                )


def _epoch(instant: str) -> float:
    return datetime.fromisoformat(instant).timestamp()


# ------------------------------------------------------------------------------------ Vault vs database


@dataclass(frozen=True, slots=True)
class Alive:
    """A credential OpenBao still holds: a token (``key`` = its ``transom_lease`` meta) or a database
    lease (``key`` = the Vault lease id), seen alive by a request sent at ``seen_at`` (epoch seconds)."""

    kind: str
    key: str
    seen_at: float


class VaultInventory:
    """OpenBao's live credentials, listed with the root token."""

    def __init__(self, vault: OpenBaoServer) -> None:
        self._addr = vault.addr
        self._headers = {"X-Vault-Token": vault.root_token}

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> requests.Response:
        return requests.request(
            method, f"{self._addr}/v1/{path}", headers=self._headers, json=body, timeout=HTTP_TIMEOUT
        )

    def credentials(self) -> tuple[list[Alive], int]:
        """Every Transom token and database lease alive now; and how many token accessors were looked at."""
        alive: list[Alive] = []
        listing = self._call("LIST", "auth/token/accessors")
        listing.raise_for_status()
        accessors = listing.json()["data"]["keys"]
        with requests.Session() as http:
            for accessor in accessors:
                seen_at = time.time()
                found = http.post(
                    f"{self._addr}/v1/auth/token/lookup-accessor",
                    json={"accessor": accessor},
                    headers=self._headers,
                    timeout=HTTP_TIMEOUT,
                )
                if found.status_code == 400:  # expired or revoked since the listing
                    continue
                found.raise_for_status()
                meta = found.json()["data"].get("meta") or {}
                if meta.get("transom_lease"):
                    alive.append(Alive("token", str(meta["transom_lease"]), seen_at))
        prefix = f"{DATABASE_MOUNT}/creds/{DATABASE_ROLE}/"
        seen_at = time.time()
        leases = self._call("LIST", f"sys/leases/lookup/{prefix}")
        if leases.status_code != 404:  # 404: none
            leases.raise_for_status()
            keys = leases.json()["data"]["keys"]
            alive += [Alive("dynamic", prefix + key, seen_at) for key in keys]
        return alive, len(accessors)


@dataclass(frozen=True, slots=True)
class LeaseState:
    id: str
    status: str
    ended_at: float | None


def lease_states(
    sessions: sessionmaker[Session], alive: Iterable[Alive]
) -> dict[tuple[str, str], LeaseState]:
    """The database's lease for each live credential, keyed like ``(Alive.kind, Alive.key)``."""
    tokens = sorted({a.key for a in alive if a.kind == "token"})
    dynamic = sorted({a.key for a in alive if a.kind == "dynamic"})
    found: dict[tuple[str, str], LeaseState] = {}
    columns = select(Lease.id, Lease.status, Lease.ended_at, Lease.vault_lease_id)
    with sessions() as session:
        for kind, keys, column in (("token", tokens, Lease.id), ("dynamic", dynamic, Lease.vault_lease_id)):
            for chunk in _chunks(keys, 500):
                for row in session.execute(columns.where(column.in_(chunk))):
                    key = row.id if kind == "token" else str(row.vault_lease_id)
                    found[(kind, key)] = LeaseState(row.id, row.status, _ts(row.ended_at))
    return found


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _ts(instant: datetime | None) -> float | None:
    return instant.timestamp() if instant is not None else None


def snapshot_leaks(cluster: SoakCluster, inventory: VaultInventory) -> tuple[list[str], int]:
    """During the load: credentials alive at OpenBao after the database recorded their lease as ended
    (which it does only after Vault confirmed the revocation), or tokens of a lease the database never had
    (a token is created only after its write-ahead row committed). Returns (leaks, credentials seen)."""
    alive, _ = inventory.credentials()
    states = lease_states(cluster.sessions, alive)
    leaks = []
    for credential in alive:
        state = states.get((credential.kind, credential.key))
        if state is None:
            if credential.kind == "token":  # a dynamic one may be between Vault's answer and activation
                leaks.append(f"token of unknown lease {credential.key} alive at Vault")
            continue
        if state.status in ENDED and state.ended_at is not None and state.ended_at < credential.seen_at:
            late = credential.seen_at - state.ended_at
            leaks.append(
                f"{credential.kind} credential of {state.id} alive {late:.1f} s after the lease ended "
                f"({state.status})"
            )
    return leaks, len(alive)


def end_leaks(cluster: SoakCluster, inventory: VaultInventory) -> tuple[list[str], int, int]:
    """At the end: every credential alive at OpenBao without an active lease. (leaks, alive, accessors)."""
    alive, accessors = inventory.credentials()
    states = lease_states(cluster.sessions, alive)
    leaks = []
    for credential in alive:
        state = states.get((credential.kind, credential.key))
        if state is None:
            leaks.append(f"{credential.kind} credential alive at Vault for no lease in the database")
        elif state.status != LeaseStatus.ACTIVE:
            leaks.append(f"{credential.kind} credential of {state.id} alive at Vault ({state.status})")
    return leaks, len(alive), accessors


def leftover_roles(cluster: SoakCluster) -> int:
    with psycopg.connect(**PG_PARAMS) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_roles WHERE starts_with(rolname, %s)", (cluster.vault.role_prefix,)
        ).fetchone()
        return int(row[0]) if row else 0


# ----------------------------------------------------------------------------------------- RSS tracking


@dataclass
class RssRow:
    name: str
    start_pid: int
    start_kib: int
    last_pid: int
    last_kib: int
    max_kib: int

    @property
    def growth_kib(self) -> int:
        return self.last_kib - self.start_kib

    @property
    def bound_kib(self) -> int:
        return max(int(self.start_kib * RSS_GROWTH_FRACTION), RSS_GROWTH_FLOOR_KIB)

    @property
    def flat(self) -> bool:
        return self.growth_kib <= self.bound_kib


class RssTracker:
    def __init__(self) -> None:
        self.rows: dict[str, RssRow] = {}

    def baseline(self, processes: dict[str, int]) -> None:
        for name, pid in processes.items():
            kib = rss_kib(pid)
            if kib is not None:
                self.rows[name] = RssRow(name, pid, kib, pid, kib, kib)

    def sample(self, processes: dict[str, int]) -> None:
        for name, pid in processes.items():
            row = self.rows.get(name)
            kib = rss_kib(pid)
            if row is None or kib is None:
                continue
            row.last_pid, row.last_kib, row.max_kib = pid, kib, max(row.max_kib, kib)


# ----------------------------------------------------------------------------------------------- checks


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class DatabaseFigures:
    by_status: Counter[str]
    by_end_reason: Counter[str]
    expiry_lags: list[float]  # seconds, ended_at - expires_at, of expired leases
    events: int


def database_figures(sessions: sessionmaker[Session]) -> DatabaseFigures:
    with sessions() as session:
        statuses = Counter({str(s): int(n) for s, n in session.execute(_grouped(Lease.status))})
        reasons = Counter(
            {str(r): int(n) for r, n in session.execute(_grouped(Lease.end_reason)) if r is not None}
        )
        lags = sorted(
            (ended - expires).total_seconds()
            for expires, ended in session.execute(
                select(Lease.expires_at, Lease.ended_at).where(Lease.status == LeaseStatus.EXPIRED)
            )
            if ended is not None
        )
        events = int(session.scalar(select(func.count()).select_from(AuditEvent)) or 0)
    return DatabaseFigures(statuses, reasons, lags, events)


def _grouped(column: Any) -> Any:
    return select(column, func.count()).group_by(column)


def lease_checks(sessions: sessionmaker[Session], stats: Stats) -> tuple[list[Check], list[str]]:
    """The database's verdicts, and the story of each lease (a few) that failed one or puzzled a client."""
    now = datetime.now(UTC)
    checks = []
    with sessions() as session:
        overdue = session.scalar(
            select(func.count())
            .select_from(Lease)
            .where(Lease.status == LeaseStatus.ACTIVE, Lease.expires_at <= now)
        )
        active = session.scalar(
            select(func.count()).select_from(Lease).where(Lease.status == LeaseStatus.ACTIVE)
        )
        unsettled = dict(
            session.execute(
                _grouped(Lease.status).where(Lease.status.in_((LeaseStatus.REVOKING, LeaseStatus.ISSUING)))
            ).all()
        )
        early_ids = sorted(
            session.scalars(
                select(Lease.id).where(Lease.status == LeaseStatus.EXPIRED, Lease.ended_at < Lease.expires_at)
            )
        )
        early = len(early_ids)
        ended = {str(i) for i in session.scalars(select(Lease.id).where(Lease.status.in_(ENDED)))}
        end_events = _event_counts(session, tuple(END_ACTIONS.values()))
        granted_events = _event_counts(session, ("lease.granted",))
        verification = verify_chain(session)
        doubled = sorted(i for i, n in end_events.items() if n > 1)
        with stats.lock:
            suspects = sorted(stats.suspects)
        told = dict.fromkeys([*doubled[:3], *early_ids[:3], *suspects])
        evidence = [lease_story(session, lease_id) for lease_id in told]
    checks.append(
        Check(
            "no lease active past its expires_at",
            overdue == 0,
            f"{overdue} overdue; {active} still active (not yet due) at the end",
        )
    )
    checks.append(
        Check(
            "no lease left revoking or issuing",
            not unsettled,
            ", ".join(f"{n} {s}" for s, n in sorted(unsettled.items())) or "none",
        )
    )
    checks.append(Check("no lease expired before its expires_at", early == 0, f"{early} ended early"))
    checks.append(
        Check(
            "the ledger's chain verifies",
            verification.ok,
            f"{verification.checked} events checked"
            + ("" if verification.ok else f"; first bad id {verification.first_bad_id}"),
        )
    )
    missing = sorted(ended - set(end_events))
    stray = sorted(set(end_events) - ended)
    checks.append(
        Check(
            "exactly one end event per ended lease",
            not (missing or doubled or stray),
            f"{len(ended)} ended leases, {sum(end_events.values())} end events; "
            f"missing {_few(missing)}, more than one {_few(doubled)}, for a lease not ended {_few(stray)}",
        )
    )
    ungranted = sorted(i for i in stats.granted_ids if granted_events.get(i) != 1)
    checks.append(
        Check(
            "every lease a client was granted has exactly one lease.granted event",
            not ungranted,
            f"{len(stats.granted_ids)} grants seen by clients, "
            f"{sum(granted_events.values())} granted events; without exactly one {_few(ungranted)}",
        )
    )
    return checks, evidence


def lease_story(session: Session, lease_id: str) -> str:
    """One lease as the database tells it: its row, then its ledger events in order."""
    lease = session.get(Lease, lease_id)
    if lease is None:
        return f"`{lease_id}`: no such lease in the database"
    events = session.execute(
        select(AuditEvent.action, AuditEvent.actor_type, AuditEvent.at, AuditEvent.details)
        .where(AuditEvent.lease_id == lease_id)
        .order_by(AuditEvent.id)
    ).all()
    told = [
        f"{action} {at:%H:%M:%S.%f}"[:-3]
        + f" by {actor}"
        + (f" (expires_at {details['expires_at']})" if "expires_at" in details else "")
        for action, actor, at, details in events
    ]
    ended = f"{lease.ended_at:%H:%M:%S.%f}"[:-3] if lease.ended_at else "-"
    return (
        f"`{lease.id}` {lease.secret_kind}, now {lease.status} ({lease.end_reason}), "
        f"expires_at {lease.expires_at:%H:%M:%S.%f}"[:-3]
        + f", ended_at {ended}, renewals {lease.renewals}: "
        + " → ".join(told)
    )


def revocation_check(sessions: sessionmaker[Session], vault_log: str) -> Check:
    """A failed revocation (``lease.revoke_failed``) at a healthy OpenBao is Transom's doing, unless OpenBao
    itself says why: its database plugin can fail a revocation when PostgreSQL refuses one of its statements
    (``tuple concurrently updated``, with many roles dropped at once), which OpenBao answers with 400."""
    kinds = {name: kind for kind, name in SECRETS.items()}
    with sessions() as session:
        rows = session.execute(
            select(AuditEvent.secret, AuditEvent.details).where(AuditEvent.action == "lease.revoke_failed")
        ).all()
    failures = Counter(
        f"{kinds.get(str(secret), secret)} {(details or {}).get('error_class')}" for secret, details in rows
    )
    dynamic = sum(n for key, n in failures.items() if key.startswith("dynamic "))
    explained = vault_log.count("lease revocation failed")
    unexplained = len(rows) - min(dynamic, explained)
    return Check(
        "no revocation failed at Vault but for reasons OpenBao logged (lease.revoke_failed)",
        unexplained == 0,
        (", ".join(f"{n} {key}" for key, n in failures.most_common()) or "none")
        + f"; OpenBao logged {explained} failed database revocations (retried by the workers)",
    )


def _event_counts(session: Session, actions: tuple[str, ...]) -> dict[str, int]:
    rows = session.execute(
        select(AuditEvent.lease_id, func.count())
        .where(AuditEvent.action.in_(actions), AuditEvent.lease_id.is_not(None))
        .group_by(AuditEvent.lease_id)
    )
    return {str(lease_id): int(n) for lease_id, n in rows}


def _few(items: list[str], shown: int = 5) -> str:
    if not items:
        return "0"
    more = f" (+{len(items) - shown} more)" if len(items) > shown else ""
    return f"{len(items)}: {', '.join(items[:shown])}{more}"


def client_checks(stats: Stats) -> list[Check]:
    with stats.lock:
        server_errors = sum(n for (_, status), n in stats.statuses.items() if status >= 500)
        unexpected, transport = list(stats.unexpected), list(stats.transport_errors)
        early, canary_failures = list(stats.early_conflicts), list(stats.canary_failures)
        canaries = stats.canaries
    return [
        Check(
            "every answer as the API promises (no 5xx, no unexpected status, no dropped connection)",
            not (unexpected or transport or server_errors),
            f"{server_errors} 5xx; unexpected {_few(unexpected, 3)}; "
            f"transport or client errors {_few(transport, 3)}",
        ),
        Check(
            "no renew or release found its lease ended before expires_at",
            not early,
            f"{_few(early, 3)} (sent more than {EARLY_MARGIN:.0f} s before expires_at)",
        ),
        Check(
            "a released or revoked credential stops working at once",
            not canary_failures,
            f"{canaries} token/database credentials tried after 200; "
            f"still working {_few(canary_failures, 3)}",
        ),
    ]


def rss_checks(rss: RssTracker, victim: str) -> list[Check]:
    too_much = [
        f"{row.name} +{row.growth_kib / 1024:.1f} MiB (bound {row.bound_kib / 1024:.0f})"
        for row in rss.rows.values()
        if not row.flat
    ]
    respawned = [
        row.name for row in rss.rows.values() if row.last_pid != row.start_pid and row.name != victim
    ]
    return [
        Check(
            "RSS flat (growth ≤ max(50 %, 60 MiB) per process)",
            not too_much and bool(rss.rows),
            _few(too_much) if too_much else f"{len(rss.rows)} processes within bounds",
        ),
        Check(
            "no broker or worker process died or was respawned (but the one killed on purpose)",
            not respawned,
            _few(respawned),
        ),
    ]


def log_errors(texts: dict[str, str]) -> list[str]:
    found = []
    for name, text in texts.items():
        for line in text.splitlines():
            if any(marker in line for marker in LOG_ERROR_MARKERS):
                found.append(f"{name}: {line.strip()[:200]}")
    return found


def access_log_5xx(text: str) -> int:
    """5xx answers in gunicorn's access log (format ``h "m U" s B Ls``)."""
    count = 0
    for line in text.splitlines():
        parts = line.rsplit('" ', 1)
        if len(parts) == 2 and parts[1][:1] == "5" and parts[1][:3].isdigit():
            count += 1
    return count


# ----------------------------------------------------------------------------------------------- report


@dataclass
class SoakReport:
    options: SoakOptions
    seed: int
    log_dir: Path
    load_seconds: float = 0.0
    baseline_seconds: float = 0.0  # into the load when the RSS baseline was taken
    drain_seconds: float = 0.0
    stats: Stats = field(default_factory=Stats)
    database: DatabaseFigures | None = None
    rss: RssTracker = field(default_factory=RssTracker)
    victim: str = "worker-2"
    kills: int = 0
    snapshots: int = 0
    snapshot_credentials: int = 0
    end_alive: int = 0
    end_accessors: int = 0
    checks: list[Check] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)
    aborted: str | None = None

    @property
    def ok(self) -> bool:
        return self.aborted is None and bool(self.checks) and all(c.ok for c in self.checks)

    def render(self) -> str:
        o, s = self.options, self.stats
        out = [
            "# Transom soak",
            "",
            f"{datetime.now(UTC):%Y-%m-%d %H:%M}Z. 2 x `transom serve` (gunicorn, {GUNICORN_WORKERS} workers "
            f"each) and 2 x `transom worker` on one PostgreSQL, a private OpenBao, the test OIDC issuer. "
            f"{o.threads} client threads, TTLs {TTL_RANGE[0]}-{TTL_RANGE[1]} s, one worker SIGKILLed every "
            f"{o.kill_every:.0f} s, seed {self.seed}. Logs: `{self.log_dir}`.",
            "",
        ]
        if self.aborted:
            out += [f"**Aborted:** {self.aborted}", ""]
        granted = sum(s.granted_by_kind.values())
        requests_total = sum(s.statuses.values())
        load = max(self.load_seconds, 1e-9)
        out += [
            "## Load",
            "",
            f"- load {self.load_seconds:.0f} s (RSS baseline after {self.baseline_seconds:.0f} s), "
            f"then {self.drain_seconds:.0f} s for the workers to end the rest",
            f"- leases granted: {granted} ({granted / load:.1f}/s): "
            + ", ".join(f"{k} {s.granted_by_kind[k]}" for k in KIND_WEIGHTS),
            f"- requests: {requests_total} ({requests_total / load:.1f}/s); by API process: "
            + ", ".join(f"{api} {n}" for api, n in sorted(s.requests_by_api.items()))
            + "; leases granted by "
            + ", ".join(f"{api} {n}" for api, n in sorted(s.granted_by_api.items())),
            "- plans: " + ", ".join(f"{p} {s.plans[p]}" for p in PLAN_WEIGHTS),
            f"- renew/release at the instant of expiry answered 409 (correctly): {s.edge_conflicts}",
            f"- worker kills (SIGKILL + restart): {self.kills}",
            f"- Vault snapshots during the load: {self.snapshots} "
            f"({self.snapshot_credentials} live credentials compared with the database)",
            "",
            "| operation | requests | statuses | p50 ms | p99 ms | max ms |",
            "|---|---|---|---|---|---|",
        ]
        for op in EXPECTED:
            times = sorted(s.latencies.get(op, []))
            if not times:
                continue
            codes = ", ".join(f"{code}: {n}" for (o_, code), n in sorted(s.statuses.items()) if o_ == op)
            out.append(
                f"| {op} | {len(times)} | {codes} | {_pct(times, 0.5) * 1000:.0f} | "
                f"{_pct(times, 0.99) * 1000:.0f} | {times[-1] * 1000:.0f} |"
            )
        if self.database is not None:
            db = self.database
            lags = db.expiry_lags
            out += [
                "",
                "## End state (database)",
                "",
                "- leases by status: " + ", ".join(f"{k} {v}" for k, v in sorted(db.by_status.items())),
                "- by end reason: " + ", ".join(f"{k} {v}" for k, v in sorted(db.by_end_reason.items())),
                f"- ledger events: {db.events}",
            ]
            if lags:
                out.append(
                    f"- expiry lag (ended_at - expires_at) of {len(lags)} expired leases: "
                    f"p50 {_pct(lags, 0.5):.2f} s, p99 {_pct(lags, 0.99):.2f} s, max {lags[-1]:.2f} s"
                )
            out.append(
                f"- at the end OpenBao held {self.end_alive} Transom credentials "
                f"({self.end_accessors} token accessors looked up)"
            )
        out += [
            "",
            "## RSS (MiB)",
            "",
            "| process | start | end | max | growth | bound |",
            "|---|---|---|---|---|---|",
        ]
        for row in self.rss.rows.values():
            note = ""
            if row.last_pid != row.start_pid:
                note = (
                    f" (restarted {self.kills}x; end = newest)" if row.name == self.victim else " (new PID!)"
                )
            out.append(
                f"| {row.name}{note} | {row.start_kib / 1024:.1f} | {row.last_kib / 1024:.1f} | "
                f"{row.max_kib / 1024:.1f} | {row.growth_kib / 1024:+.1f} "
                f"({row.growth_kib / max(row.start_kib, 1) * 100:+.0f} %) | {row.bound_kib / 1024:.0f} |"
            )
        out += ["", "## Checks", "", "| check | result | detail |", "|---|---|---|"]
        for check in self.checks:
            detail = check.detail.replace("|", "\\|").replace("\n", " ")
            out.append(f"| {check.name} | {'ok' if check.ok else '**FAIL**'} | {detail} |")
        if self.evidence:
            out += ["", "## Leases that failed a check or surprised a client", ""]
            out += [f"- {story}" for story in self.evidence]
        out += ["", f"**{'PASS' if self.ok else 'FAIL'}**"]
        return "\n".join(out)


def _pct(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# ------------------------------------------------------------------------------------------------- run


def run_soak(options: SoakOptions, *, progress: Callable[[str], None] | None = None) -> SoakReport:
    """Set everything up, load it, audit it, take it down; the report says what passed."""
    say = progress or (lambda _message: None)
    log_dir = options.log_dir or Path(tempfile.mkdtemp(prefix="transom-soak-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    stats = Stats()
    with SoakCluster(log_dir) as cluster:
        say(f"cluster up: {', '.join(a.url for a in cluster.apis)}; logs in {log_dir}")
        driver = LoadDriver(cluster, options, stats)
        report = SoakReport(options, driver.seed, log_dir, stats=stats)
        _load(cluster, driver, options, report, say)
        say(f"load stopped after {report.load_seconds:.0f} s; waiting for the workers to end the rest")
        report.drain_seconds = _drain(cluster)
        time.sleep(SETTLE_MARGIN)
        say("checking")
        _check(cluster, report)
        cluster.stop_processes()
        _check_after_stop(cluster, report)
    return report


def _load(
    cluster: SoakCluster,
    driver: LoadDriver,
    options: SoakOptions,
    report: SoakReport,
    say: Callable[[str], None],
) -> None:
    inventory = VaultInventory(cluster.vault)
    leaks: list[str] = []

    def snapshot() -> None:
        found, seen = snapshot_leaks(cluster, inventory)
        leaks.extend(found)
        report.snapshots += 1
        report.snapshot_credentials += seen

    began = time.monotonic()
    warm_at = began + options.warmup_seconds
    next_kill = began + options.kill_every if options.kill_every > 0 else float("inf")
    next_snapshot = began + options.snapshot_every
    next_sample = warm_at
    baselined = False
    driver.start()
    try:
        while True:
            now = time.monotonic()
            if now - began >= options.duration or driver.requested_all:
                break
            dead = cluster.dead_processes()
            if dead:
                report.aborted = f"{', '.join(dead)} exited during the load"
                break
            if now >= next_sample:
                if baselined:
                    report.rss.sample(cluster.processes())
                else:
                    report.rss.baseline(cluster.processes())
                    report.baseline_seconds = now - began
                    baselined = True
                next_sample = now + RSS_SAMPLE_EVERY
            if now >= next_kill:
                cluster.kill_and_restart_worker(2)
                granted = sum(report.stats.granted_by_kind.values())
                say(
                    f"+{now - began:.0f} s: worker-2 killed and restarted ({cluster.kills}); {granted} leases"
                )
                next_kill = now + options.kill_every
            if now >= next_snapshot:
                snapshot()
                next_snapshot = time.monotonic() + options.snapshot_every
            time.sleep(0.2)
    finally:
        driver.stop()
    report.load_seconds = time.monotonic() - began
    snapshot()  # and one as the load stops, so that even a run shorter than the interval has one
    if not baselined:  # a run shorter than its warm-up: the baseline is what there is now
        report.rss.baseline(cluster.processes())
        report.baseline_seconds = report.load_seconds
    report.rss.sample(cluster.processes())
    report.kills = cluster.kills
    report.checks.append(
        Check(
            "no credential alive at Vault after its lease ended (snapshots during the load)",
            not leaks,
            f"{report.snapshots} snapshots; leaks {_few(leaks, 3)}",
        )
    )


def _drain(cluster: SoakCluster) -> float:
    """Wait until nothing is active, revoking or issuing, or until the last expiry plus a claim timeout
    (a killed worker's claimed rows wait that long) plus a margin. Returns the seconds waited."""
    began = time.monotonic()
    with cluster.sessions() as session:
        last = session.scalar(select(func.max(Lease.expires_at)).where(Lease.status == LeaseStatus.ACTIVE))
    remaining = max(0.0, (last - datetime.now(UTC)).total_seconds()) if last is not None else 0.0
    deadline = began + remaining + CLAIM_TIMEOUT.total_seconds() + DRAIN_MARGIN
    live = (LeaseStatus.ACTIVE, LeaseStatus.REVOKING, LeaseStatus.ISSUING)
    while time.monotonic() < deadline:
        with cluster.sessions() as session:
            pending = session.scalar(select(func.count()).select_from(Lease).where(Lease.status.in_(live)))
        if not pending:
            break
        time.sleep(0.5)
    return time.monotonic() - began


def _check(cluster: SoakCluster, report: SoakReport) -> None:
    report.database = database_figures(cluster.sessions)
    checks, report.evidence = lease_checks(cluster.sessions, report.stats)
    report.checks += checks
    leaks, report.end_alive, report.end_accessors = end_leaks(cluster, VaultInventory(cluster.vault))
    report.checks.append(
        Check(
            "no credential alive at Vault without an active lease (at the end)",
            not leaks,
            f"{report.end_alive} alive; {_few(leaks, 3)} without an active lease",
        )
    )
    report.checks.append(
        revocation_check(cluster.sessions, cluster.vault.log_path.read_text(errors="replace"))
    )
    roles = leftover_roles(cluster)
    report.checks.append(
        Check("no PostgreSQL role of the database engine left behind", roles == 0, f"{roles} left")
    )
    report.checks += client_checks(report.stats)
    report.checks += rss_checks(report.rss, report.victim)


def _check_after_stop(cluster: SoakCluster, report: SoakReport) -> None:
    report.checks.append(
        Check(
            "workers stop cleanly on SIGTERM",
            bool(cluster.worker_exits) and all(code == 0 for code in cluster.worker_exits),
            f"exit codes {cluster.worker_exits}",
        )
    )
    texts = {api.name: api.log() for api in cluster.apis} | cluster.worker_logs()
    errors = log_errors(texts)
    served_5xx = sum(access_log_5xx(api.log()) for api in cluster.apis)
    report.checks.append(
        Check(
            "no error, traceback or 5xx in any process's log",
            not errors and served_5xx == 0,
            f"{served_5xx} 5xx in the access logs; error lines {_few(errors, 3)}",
        )
    )
