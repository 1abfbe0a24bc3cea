"""The client side: a bounded pool of threads requesting leases and following a plan per lease, with the
figures of what they saw."""

from __future__ import annotations

import heapq
import itertools
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
import requests

from tests.support.soak.cluster import SoakCluster
from tests.support.soak.options import (
    EARLY_MARGIN,
    EDGE_JITTER,
    EXPECTED,
    HTTP_TIMEOUT,
    KIND_WEIGHTS,
    PG_PARAMS,
    PLAN_WEIGHTS,
    SECRETS,
    TTL_RANGE,
    SoakOptions,
)


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
