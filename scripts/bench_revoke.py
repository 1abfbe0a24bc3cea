"""Revocation by `transom worker` processes on PostgreSQL, beside direct hvac revocations, in one run.

N token leases (real orphan tokens in OpenBao) are written straight into a scratch database; once the workers
are up, their expiries are set to fall evenly over the next ``--spread`` seconds (default 60), then, in a
second scenario, all at the same instant ("burst"). Per scenario and worker count: revocation lag
(``ended_at - expires_at``: Vault confirmed and the ledger written) p50/p99/max, and revocations/s
(N over first expiry to last confirmation: the arrival rate when the workers keep up, their capacity in
the burst). Beside them: revoke-accessor straight through hvac, on 1 thread and on as many threads as a
worker uses. Prints a Markdown table.

    PYTHONPATH=. .venv/bin/python scripts/bench_revoke.py [--leases 10000] [--spread 60] [--workers 1 2]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import hvac
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from app.db import make_engine, make_session_factory
from app.leases.models import Lease
from app.scheduler.revocations import REVOKE_THREADS
from app.vault.hvac_backend import HvacBackend
from tests.integration.scheduler.lease_seeding import TOKEN_SPEC, seed_leases
from tests.support.databases import PostgresDatabases
from tests.support.openbao import OpenBaoServer
from tests.support.processes import transom_env

ROOT = Path(__file__).resolve().parent.parent
VAULT_TTL = timedelta(hours=1)  # Vault must not end a token before the workers do


@dataclass(frozen=True, slots=True)
class Row:
    scenario: str
    workers: str
    leases: int
    p50: float | None
    p99: float | None
    worst: float | None
    per_second: float


@contextmanager
def workers(count: int, database_url: str, vault: OpenBaoServer, threads: int) -> Iterator[None]:
    env = transom_env(database_url, vault, log_level="INFO")
    with tempfile.TemporaryDirectory(prefix="bench-revoke-") as directory, ExitStack() as files:
        logs = [Path(directory) / f"worker-{i}.log" for i in range(count)]
        processes = [
            subprocess.Popen(
                [sys.executable, "-m", "app.cli", "worker", "--threads", str(threads)],
                env=env,
                cwd=ROOT,
                stdout=files.enter_context(open(log, "wb")),
                stderr=subprocess.STDOUT,
            )
            for log in logs
        ]
        try:
            for log in logs:
                _wait_for(log, "sweeper started")
            yield
        finally:
            for process in processes:
                process.send_signal(signal.SIGTERM)
            for process, log in zip(processes, logs, strict=True):
                process.wait(timeout=60)
                errors = [
                    line
                    for line in log.read_text().splitlines()
                    if " ERROR " in line or '"level": "ERROR"' in line
                ]
                if errors:
                    print(f"worker {process.pid} logged errors, e.g. {errors[0]}", file=sys.stderr)


def _wait_for(log: Path, needle: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while needle not in log.read_text(errors="replace"):
        if time.monotonic() > deadline:
            raise SystemExit(f"a worker did not start:\n{log.read_text(errors='replace')}")
        time.sleep(0.05)


def run_scenario(
    name: str,
    count: int,
    leases: int,
    spread: float,
    databases: PostgresDatabases,
    vault: OpenBaoServer,
    threads: int,
) -> Row:
    url = databases.fresh()
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    try:
        now = datetime.now(UTC)
        with HvacBackend(vault.addr, token=vault.root_token) as backend:
            seed_leases(
                sessions,
                backend,
                [now + timedelta(days=1)] * leases,
                now=now,
                kind="token",
                vault_ttl=VAULT_TTL,
            )
        with workers(count, url, vault, threads):
            start = datetime.now(UTC) + timedelta(seconds=1)
            _spread_expiries(sessions, start, spread, leases)
            deadline = time.monotonic() + spread + 120 + leases / 50
            while _ended(sessions) < leases:
                if time.monotonic() > deadline:
                    raise SystemExit(f"{name}: only {_ended(sessions)} of {leases} leases ended in time")
                time.sleep(0.25)
        lags, first, last = _lags(sessions)
    finally:
        engine.dispose()
    return Row(
        name,
        str(count),
        leases,
        _quantile(lags, 0.50),
        _quantile(lags, 0.99),
        lags[-1],
        leases / max((last - first).total_seconds(), 1e-9),
    )


def _spread_expiries(sessions: sessionmaker[Session], start: datetime, spread: float, leases: int) -> None:
    """Expiries evenly over [start, start + spread), in one UPDATE: none falls due before all are set."""
    step = spread / max(leases - 1, 1) if spread else 0.0
    with sessions() as session, session.begin():
        session.execute(
            text(
                "UPDATE leases SET expires_at = :start + make_interval(secs => (n.rank - 1) * :step) "
                "FROM (SELECT id, row_number() OVER (ORDER BY id) AS rank FROM leases) AS n "
                "WHERE leases.id = n.id"
            ),
            {"start": start, "step": step},
        )


def _ended(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return int(
            session.scalar(select(func.count()).select_from(Lease).where(Lease.ended_at.is_not(None))) or 0
        )


def _lags(sessions: sessionmaker[Session]) -> tuple[list[float], datetime, datetime]:
    with sessions() as session:
        rows = session.execute(select(Lease.expires_at, Lease.ended_at)).all()
    pairs = [(expires, ended) for expires, ended in rows if ended is not None]
    lags = sorted((ended - expires).total_seconds() for expires, ended in pairs)
    return lags, min(e for e, _ in pairs), max(e for _, e in pairs)


def _quantile(values: Sequence[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))]


def direct_hvac(vault: OpenBaoServer, leases: int, threads: int) -> Row:
    """Create ``leases`` tokens like the broker does, then time revoke-accessor alone."""
    with HvacBackend(vault.addr, token=vault.root_token) as backend, ThreadPoolExecutor(16) as pool:
        accessors = list(
            pool.map(
                lambda i: (
                    backend.issue(
                        TOKEN_SPEC, lease_id=f"bench-{i}", ttl=VAULT_TTL, max_ttl=VAULT_TTL
                    ).handle.accessor
                ),
                range(leases),
            )
        )
    clients = [hvac.Client(url=vault.addr, token=vault.root_token, timeout=10) for _ in range(threads)]

    def revoke(chunk: tuple[hvac.Client, list[str | None]]) -> None:
        client, mine = chunk
        for accessor in mine:
            client.auth.token.revoke_accessor(accessor)

    chunks = [(clients[i], accessors[i::threads]) for i in range(threads)]
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(revoke, chunks))
    elapsed = time.perf_counter() - started
    for client in clients:
        client.adapter.close()
    return Row(
        f"direct hvac revoke-accessor, {threads} thread(s)", "-", leases, None, None, None, leases / elapsed
    )


def table(rows: Sequence[Row]) -> str:
    def seconds(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f} s"

    lines = [
        "| scenario | workers | leases | lag p50 | lag p99 | lag max | revocations/s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r.scenario} | {r.workers} | {r.leases} | {seconds(r.p50)} | {seconds(r.p99)} "
        f"| {seconds(r.worst)} | {r.per_second:.0f} |"
        for r in rows
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--leases", type=int, default=10_000)
    parser.add_argument("--spread", type=float, default=60.0, help="seconds over which the leases expire")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--threads", type=int, default=REVOKE_THREADS, help="Vault threads per worker")
    parser.add_argument("--no-burst", action="store_true", help="skip the all-at-once scenario")
    args = parser.parse_args()

    vault = OpenBaoServer()
    databases = PostgresDatabases()
    rows: list[Row] = []
    try:
        # The suite's baseline: the deploy-prod policy, the token role leases go through, the log's key.
        vault.ensure_baseline(None)
        scenarios = [(f"expiring over {args.spread:.0f} s", args.spread)]
        if not args.no_burst:
            scenarios.append(("all expiring at once", 0.0))
        for name, spread in scenarios:
            for count in args.workers:
                row = run_scenario(name, count, args.leases, spread, databases, vault, args.threads)
                print(f"{row.scenario}, {count} worker(s): done", file=sys.stderr)
                rows.append(row)
        rows.append(direct_hvac(vault, args.leases, 1))
        rows.append(direct_hvac(vault, args.leases, args.threads))
    finally:
        databases.drop_all()
        vault.stop()
    print(table(rows))
    print(
        f"\n{os.cpu_count()} CPUs; OpenBao dev server (in memory) and PostgreSQL on this machine; "
        f"batches of 50, {args.threads} Vault threads per worker; one run each.",
    )


if __name__ == "__main__":
    main()
