"""A freeze revoking N token leases, beside direct hvac revocations of as many tokens, in one run.

The acceptance line: a freeze revoking 10k leases at >= 0.8x the direct revocation rate. Each scenario gets a
fresh PostgreSQL database, a `transom serve` (gunicorn) configured through its admin API (an issuer, the
token secret, a policy that grants the seeded identity), and N active token leases under that policy, each
backed by a real orphan token in one OpenBao dev server (``seed_leases``; expiries a day away, so only the
freeze can end them).

- **A, freeze created through the API**: ``POST /v1/freezes`` with a ``once`` occurrence that covers now;
  the admin request itself re-evaluates and revokes. Timed from the request to the last ``ended_at``.
- **B, scheduled freeze starting**: ``POST /v1/freezes`` with a ``once`` occurrence that starts ``--lead``
  seconds later, enforced by `transom worker` processes (the scheduler's ``enforce_freezes``, every second).
  Timed from the occurrence's start to the last ``ended_at``.

Beside them: revoke-accessor straight through hvac on as many threads as the broker revokes with
(``REVOKE_THREADS``), N fresh tokens timed right after each scenario against the same OpenBao (its speed
drifts over a run on a shared machine), and once on 1 thread. Ratio = broker leases/s / the direct
revocations/s measured next to it. Also shown: the time until every end was committed (seen by a poller, 50 ms
resolution; ``ended_at`` is stamped when the settling transaction begins). Afterwards each scenario is
checked: no lease left active or revoking, every lease ``revoked`` with end reason ``freeze`` and only
``freeze_active`` as its cause, one end event per lease in the ledger, and a sample of the seeded tokens
refused by OpenBao. Exits non-zero when a check fails. Prints a Markdown table.

    PYTHONPATH=. .venv/bin/python scripts/bench_freeze.py [--leases 10000] [--workers 1 2] [--lead 8]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from app.db import make_engine, make_session_factory
from app.decision.reasons import FREEZE_ACTIVE
from app.leases.models import Lease, LeaseStatus
from app.scheduler.revocations import REVOKE_THREADS
from app.vault.hvac_backend import HvacBackend
from scripts.bench_revoke import direct_hvac, workers
from tests.integration.scheduler.lease_seeding import (
    IDENTITY,
    TOKEN_SPEC,
    SeededLease,
    end_event_counts,
    seed_leases,
    token_works,
)
from tests.support.databases import PostgresDatabases
from tests.support.oidc_issuer import OidcIssuer
from tests.support.openbao import OpenBaoServer
from tests.support.processes import free_port, transom_env

ROOT = Path(__file__).resolve().parent.parent
VAULT_TTL = timedelta(hours=1)  # Vault must not end a token before the freeze does
LEASE_LIFETIME = timedelta(days=1)  # no lease expires during the run
ISSUER_NAME = "github"
POLICY_NAME = "bench-freeze"
GRANTED_IDENTITY = {**IDENTITY, "issuer": ISSUER_NAME, "event": "push"}
TOKEN_SAMPLE = 200  # seeded tokens looked up at OpenBao afterwards: each must be refused
POLL_SECONDS = 0.05
POST_TIMEOUT = 1800.0  # seconds: the client waits this long for the admin request; gunicorn decides sooner
LOG_PROBLEMS = ("WORKER TIMEOUT", " ERROR ", '"level": "ERROR"', "Traceback", "CRITICAL")


@dataclass(frozen=True, slots=True)
class Row:
    scenario: str
    workers: str
    leases: int
    to_last_end: float  # seconds from the request (A) or the occurrence start (B) to the last ended_at
    to_committed: float  # seconds from the same instant until every end was committed (seen by a poller)
    notes: tuple[str, ...] = ()
    direct: float = 0.0  # direct revocations/s on REVOKE_THREADS threads, measured right after the scenario

    @property
    def per_second(self) -> float:
        return self.leases / max(self.to_last_end, 1e-9)

    @property
    def per_second_committed(self) -> float:
        return self.leases / max(self.to_committed, 1e-9)


@dataclass(slots=True)
class Findings:
    """What the checks found wrong (the run fails) and what is worth saying beside the table."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Api:
    url: str
    headers: dict[str, str]

    def post(self, path: str, body: dict[str, Any], timeout: float = 30.0) -> requests.Response:
        return requests.post(self.url + path, json=body, headers=self.headers, timeout=timeout)


# --- the broker ------------------------------------------------------------------------------------------


@contextmanager
def broker(
    database_url: str, vault: OpenBaoServer, issuer: OidcIssuer, findings: Findings, label: str
) -> Iterator[Api]:
    """`transom serve` (2 gunicorn workers x 8 threads, no embedded scheduler), configured for the seeded
    leases; its log is scanned for timeouts and errors when it stops."""
    env = transom_env(database_url, vault, workers="2")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-freeze-") as directory:
        log = Path(directory) / "serve.log"
        with open(log, "wb") as output:
            server = subprocess.Popen(
                [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
                env=env,
                cwd=ROOT,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_healthy(url, log)
            api = Api(url, {"Authorization": f"Bearer {_admin_token(env)}"})
            _configure(api, issuer)
            yield api
            _note_peak_memory(server.pid, findings, label)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=60)
            _scan_log(log, f"{label}: transom serve", findings)


def _wait_healthy(url: str, log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/healthz", timeout=2).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise SystemExit(f"transom serve did not start:\n{log.read_text(errors='replace')[-3000:]}")


def _admin_token(env: dict[str, str]) -> str:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "tokens", "create", "--name", "bench", "--role", "admin"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def _configure(api: Api, issuer: OidcIssuer) -> None:
    """The issuer, the seeded leases' secret and a policy that grants their identity at any time."""
    setup: list[tuple[str, dict[str, Any]]] = [
        (
            "/v1/issuers",
            {"name": ISSUER_NAME, "issuer": issuer.url, "flavor": "github", "audiences": [issuer.audience]},
        ),
        ("/v1/secrets", {"name": TOKEN_SPEC.name, "kind": "token", "policies": list(TOKEN_SPEC.policies)}),
        (
            "/v1/policies",
            {
                "name": POLICY_NAME,
                "issuer": ISSUER_NAME,
                "secrets": [TOKEN_SPEC.name],
                "repositories": [IDENTITY["repository"]],
                "branches": [IDENTITY["branch"]],
                "windows": ["always"],
                "max_ttl": "2d",
            },
        ),
    ]
    for path, body in setup:
        response = api.post(path, body)
        if response.status_code != 201:
            raise SystemExit(f"POST {path} refused: {response.status_code} {response.text[:300]}")


def _note_peak_memory(master: int, findings: Findings, label: str) -> None:
    """Peak resident memory (VmHWM) of each gunicorn worker, read while they still run."""
    children = Path(f"/proc/{master}/task/{master}/children")
    if not children.exists():
        return
    peaks = []
    for pid in children.read_text().split():
        status = Path(f"/proc/{pid}/status")
        if status.exists():
            peaks += [line.split()[1] for line in status.read_text().splitlines() if line.startswith("VmHWM")]
    if peaks:
        shown = ", ".join(f"{int(kb) / 1024:.0f} MiB" for kb in peaks)
        findings.notes.append(f"{label}: gunicorn workers' peak RSS {shown}")


def _scan_log(log: Path, who: str, findings: Findings) -> None:
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    bad = [line for line in lines if any(p in line for p in LOG_PROBLEMS)]
    if bad:
        findings.problems.append(f"{who} logged {len(bad)} problem line(s), e.g. {bad[0][:300]}")


# --- leases ----------------------------------------------------------------------------------------------


def seed(sessions: sessionmaker[Session], vault: OpenBaoServer, count: int) -> list[SeededLease]:
    """``count`` active token leases under the bench policy, a real OpenBao token behind each.

    ``seed_leases``'s identity names the issuer by its URL and states no event; an identity the broker
    grants names the issuer by its Transom name (policies compare that) and states its event (a policy
    without an events list refuses an unstated one). Both are set here, or every lease would fail the
    policy (issuer_not_allowed, event_not_allowed) and the freeze would not be what ends them."""
    now = datetime.now(UTC)
    with HvacBackend(vault.addr, token=vault.root_token) as backend:
        seeded = seed_leases(
            sessions,
            backend,
            [now + LEASE_LIFETIME] * count,
            now=now,
            kind="token",
            vault_ttl=VAULT_TTL,
            policy=POLICY_NAME,
        )
    with sessions() as session, session.begin():
        session.execute(update(Lease).values(identity=GRANTED_IDENTITY))
    return seeded


def count_where(sessions: sessionmaker[Session], *conditions: Any) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(Lease).where(*conditions)) or 0)


def ended_count(sessions: sessionmaker[Session]) -> int:
    return count_where(sessions, Lease.ended_at.is_not(None))


def last_ended_at(sessions: sessionmaker[Session]) -> datetime:
    with sessions() as session:
        last = session.scalar(select(func.max(Lease.ended_at)))
    assert isinstance(last, datetime)
    return last


def end_causes(sessions: sessionmaker[Session]) -> dict[str, int]:
    """How many leases ended for each (status, end reason, cause)."""
    with sessions() as session:
        rows = session.execute(
            select(Lease.status, Lease.end_reason, Lease.revoke_note, func.count())
            .where(Lease.ended_at.is_not(None))
            .group_by(Lease.status, Lease.end_reason, Lease.revoke_note)
        )
        return {f"{status}/{reason}/{note}": int(count) for status, reason, note, count in rows}


def wait_all_ended(
    sessions: sessionmaker[Session], count: int, *, deadline: float, give_up: Callable[[], bool]
) -> datetime | None:
    """The instant every lease was seen ended; None when ``give_up()`` says nothing more will end them."""
    while True:
        if ended_count(sessions) >= count:
            return datetime.now(UTC)
        if give_up():
            return datetime.now(UTC) if ended_count(sessions) >= count else None
        if time.monotonic() > deadline:
            raise SystemExit(f"only {ended_count(sessions)} of {count} leases ended in time")
        time.sleep(POLL_SECONDS)


def check_outcome(
    name: str, sessions: sessionmaker[Session], vault: OpenBaoServer, seeded: Sequence[SeededLease]
) -> list[str]:
    """Every lease ended by the freeze alone, exactly once in the ledger, its token dead at OpenBao."""
    problems = []
    live = count_where(sessions, Lease.status.in_((LeaseStatus.ACTIVE, LeaseStatus.REVOKING)))
    if live:
        problems.append(f"{name}: {live} lease(s) still active or revoking")
    not_by_freeze = count_where(
        sessions,
        Lease.status.is_distinct_from(LeaseStatus.REVOKED)
        | Lease.end_reason.is_distinct_from("freeze")
        | Lease.revoke_note.is_distinct_from(FREEZE_ACTIVE),
    )
    if not_by_freeze:
        problems.append(
            f"{name}: {not_by_freeze} lease(s) not revoked by the freeze alone: {end_causes(sessions)}"
        )
    events = end_event_counts(sessions)
    missing = [lease.id for lease in seeded if events.get(lease.id, 0) == 0]
    repeated = [lease.id for lease in seeded if events.get(lease.id, 0) > 1]
    if missing:
        problems.append(f"{name}: {len(missing)} lease(s) without an end event, e.g. {missing[0]}")
    if repeated:
        problems.append(f"{name}: {len(repeated)} lease(s) with more than one end event, e.g. {repeated[0]}")
    sample = random.sample(list(seeded), min(TOKEN_SAMPLE, len(seeded)))
    alive = sum(token_works(vault, lease.token) for lease in sample if lease.token is not None)
    if alive:
        problems.append(f"{name}: {alive} of {len(sample)} sampled tokens still work at OpenBao")
    return problems


def once_freeze(name: str, start: datetime, reason: str) -> dict[str, Any]:
    end = start + timedelta(hours=1)
    return {
        "name": name,
        "schedule": {"type": "once", "start": _rfc3339(start), "end": _rfc3339(end)},
        "policies": [POLICY_NAME],
        "reason": reason,
    }


def _rfc3339(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


# --- scenarios -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Setup:
    databases: PostgresDatabases
    vault: OpenBaoServer
    issuer: OidcIssuer
    leases: int
    threads: int
    findings: Findings


@contextmanager
def scratch_database(setup: Setup) -> Iterator[tuple[str, sessionmaker[Session]]]:
    url = setup.databases.fresh()
    engine = make_engine(url)
    try:
        yield url, make_session_factory(engine)
    finally:
        engine.dispose()


def freeze_through_api(setup: Setup) -> Row:
    """Scenario A: the admin's POST re-evaluates and revokes; a worker only for what Vault did not confirm."""
    name, n, notes = "A: freeze created through the API", setup.leases, []
    with (
        scratch_database(setup) as (url, sessions),
        broker(url, setup.vault, setup.issuer, setup.findings, name) as api,
    ):
        seeded = seed(sessions, setup.vault, n)
        print(f"{name}: {n} leases seeded", file=sys.stderr, flush=True)
        started = datetime.now(UTC)
        body = once_freeze("bench-now", started - timedelta(seconds=1), "benchmark: now")
        with ThreadPoolExecutor(1) as pool:
            post = pool.submit(_timed_post, api, "/v1/freezes", body)
            deadline = time.monotonic() + POST_TIMEOUT
            seen = wait_all_ended(sessions, n, deadline=deadline, give_up=post.done)
            status, seconds, text = post.result()
        notes.append(f"POST /v1/freezes answered {status} in {seconds:.2f} s")
        if status != 201:
            setup.findings.problems.append(f"{name}: POST /v1/freezes answered {status}: {text[:300]}")
        if seen is None:
            seen = _finish_with_worker(url, sessions, setup, notes)
        row = Row(
            name, "- (API)", n, _since(started, last_ended_at(sessions)), _since(started, seen), tuple(notes)
        )
        setup.findings.problems += check_outcome(name, sessions, setup.vault, seeded)
    return row


def _timed_post(api: Api, path: str, body: dict[str, Any]) -> tuple[int | str, float, str]:
    began = time.perf_counter()
    try:
        response = api.post(path, body, timeout=POST_TIMEOUT)
    except requests.RequestException as exc:
        return type(exc).__name__, time.perf_counter() - began, str(exc)
    return response.status_code, time.perf_counter() - began, response.text


def _finish_with_worker(
    url: str, sessions: sessionmaker[Session], setup: Setup, notes: list[str]
) -> datetime:
    """The request left leases revoking (Vault did not confirm, or the request failed): the scheduler
    retries them, after its in-flight grace."""
    left = setup.leases - ended_count(sessions)
    notes.append(f"{left} lease(s) left unended by the request; finished by 1 `transom worker`")
    with workers(1, url, setup.vault, setup.threads):
        seen = wait_all_ended(sessions, setup.leases, deadline=time.monotonic() + 600, give_up=lambda: False)
    assert seen is not None
    return seen


def scheduled_freeze(setup: Setup, count: int, lead: float) -> Row:
    """Scenario B: the occurrence starts ``lead`` seconds after the POST; the workers' enforce_freezes ends
    the leases."""
    name, n, notes = "B: scheduled freeze starting", setup.leases, []
    with (
        scratch_database(setup) as (url, sessions),
        broker(url, setup.vault, setup.issuer, setup.findings, f"{name}, {count} worker(s)") as api,
    ):
        seeded = seed(sessions, setup.vault, n)
        print(f"{name}, {count} worker(s): {n} leases seeded", file=sys.stderr, flush=True)
        with workers(count, url, setup.vault, setup.threads):
            start = datetime.now(UTC) + timedelta(seconds=lead)
            status, seconds, text = _timed_post(api, "/v1/freezes", once_freeze("bench-soon", start, "soon"))
            notes.append(f"POST of the future freeze answered {status} in {seconds:.2f} s")
            if status != 201:
                raise SystemExit(f"{name}: POST /v1/freezes answered {status}: {text[:300]}")
            _require_untouched_before(name, sessions, start, setup.findings)
            deadline = time.monotonic() + lead + POST_TIMEOUT
            seen = wait_all_ended(sessions, n, deadline=deadline, give_up=lambda: False)
        assert seen is not None
        row = Row(
            name, str(count), n, _since(start, last_ended_at(sessions)), _since(start, seen), tuple(notes)
        )
        setup.findings.problems += check_outcome(f"{name} ({count} worker(s))", sessions, setup.vault, seeded)
    return row


def _require_untouched_before(
    name: str, sessions: sessionmaker[Session], start: datetime, findings: Findings
) -> None:
    """Before the occurrence starts nothing may have ended (else the policy, not the freeze, ended it), and
    the POST's own re-evaluation must be over (its row locks would delay the workers)."""
    if datetime.now(UTC) >= start:
        findings.problems.append(f"{name}: the POST ended after the occurrence started; raise --lead")
    ended = ended_count(sessions)
    if ended:
        raise SystemExit(f"{name}: {ended} lease(s) ended before the freeze started: {end_causes(sessions)}")


def _since(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds()


def with_direct_baseline(row: Row, vault: OpenBaoServer) -> Row:
    """The row with as many direct revocations timed right after it, against the same OpenBao: the machine
    is shared and OpenBao's speed drifts over a run, so each scenario is compared with its neighbour."""
    print(f"{row.scenario}, {row.workers}: done; direct baseline", file=sys.stderr, flush=True)
    return replace(row, direct=direct_hvac(vault, row.leases, REVOKE_THREADS).per_second)


# --- report ----------------------------------------------------------------------------------------------


def table(rows: Sequence[Row], direct_single: float, threads: int) -> str:
    lines = [
        "| scenario | workers | leases | s to last ended_at | s to all committed | leases/s "
        f"| direct leases/s ({threads} threads) | ratio | ratio (committed) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r.scenario} | {r.workers} | {r.leases} | {r.to_last_end:.2f} | {r.to_committed:.2f} "
        f"| {r.per_second:.0f} | {r.direct:.0f} | {r.per_second / r.direct:.2f}x "
        f"| {r.per_second_committed / r.direct:.2f}x |"
        for r in rows
    ]
    lines.append(
        f"| direct hvac revoke-accessor, 1 thread | - | - | - | - | {direct_single:.0f} | - | - | - |"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--leases", type=int, default=10_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts for B")
    parser.add_argument(
        "--threads",
        type=int,
        default=REVOKE_THREADS,
        help="Vault threads of each worker's sweeper (re-evaluation always uses REVOKE_THREADS)",
    )
    parser.add_argument(
        "--lead", type=float, default=None, help="seconds from B's POST to its start (default 3 + N/2000)"
    )
    args = parser.parse_args()
    lead = args.lead if args.lead is not None else 3 + args.leases / 2000

    findings = Findings()
    databases = PostgresDatabases()
    vault = OpenBaoServer(log_dir=Path(tempfile.mkdtemp(prefix="bench-freeze-bao-")))
    rows: list[Row] = []
    try:
        vault.ensure_baseline(None)
        with OidcIssuer() as issuer:
            setup = Setup(databases, vault, issuer, args.leases, args.threads, findings)
            rows.append(with_direct_baseline(freeze_through_api(setup), vault))
            rows += [
                with_direct_baseline(scheduled_freeze(setup, count, lead), vault) for count in args.workers
            ]
        direct_single = direct_hvac(vault, args.leases, 1).per_second
    finally:
        databases.drop_all()
        vault.stop()

    print(table(rows, direct_single, REVOKE_THREADS))
    print()
    for row in rows:
        for note in row.notes:
            print(f"- {row.scenario} ({row.workers}): {note}")
    for note in findings.notes:
        print(f"- {note}")
    print(
        f"\n{os.cpu_count()} CPUs; OpenBao dev server (in memory), PostgreSQL, gunicorn (2 x 8 threads) and "
        f"the workers on this machine. The broker revokes on {REVOKE_THREADS} threads (one pool over every "
        f"doomed lease); B's occurrence starts {lead:.1f} s after its POST and the scheduler looks for "
        "starting freezes every second. One run each.",
    )
    if findings.problems:
        print("\n".join(["", "Checks failed:", *findings.problems]), file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
