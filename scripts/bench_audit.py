"""The audit ledger at scale on PostgreSQL: integration, proofs, verification, filtered pages, CSV export.

    PYTHONPATH=. .venv/bin/python scripts/bench_audit.py [--events N] [--queries Q] [--seed S] [--keep]
    PYTHONPATH=. .venv/bin/python scripts/bench_audit.py --quick

Creates a scratch database (dropped at the end unless --keep) and a private OpenBao with the log's transit
key, appends N events (50 repositories, 4 branches, one every 7 s), integrates them into the Merkle log
with the sequencer and signs a checkpoint, then measures through the app itself (Flask's client, in process):

- integration: events/s of the sequencer's batches (1,000 events each) over the whole backlog;
- ``/v1/audit/proof/inclusion`` at random positions of the whole tree, and ``/v1/audit/proof/consistency``
  between random sizes: p50/p95 against the 20 ms target each;
- ``/v1/audit/verify`` (every leaf recomputed, the root, the signature): events/s against 20k/s;
- a filtered page (``repository`` + ``branch`` + a 3-day ``after``/``before`` range, ``limit=100``) as an
  auditor asks for it: p50/p95/p99 against the 50 ms target;
- ``GET /v1/audit/events?format=csv`` of every event: rows/s, and how much the process's peak RSS grew
  while it streamed (flat memory: a few MiB, however large the export).

--quick: 100,000 events and 100 queries (``BENCH_QUICK=1 make bench``). Prints a Markdown table.
PostgreSQL at 127.0.0.1:5432 (user postgres), like the test suite.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the ledger filler lives with the tests that use it too

from app import create_app  # noqa: E402
from app.audit.ledger import Actor, Ledger  # noqa: E402
from app.audit.sequencer import integrate_batch, publish_checkpoint  # noqa: E402
from app.clock import SystemClock  # noqa: E402
from app.db import make_session_factory, transaction  # noqa: E402
from app.instants import format_instant  # noqa: E402
from app.migrate import upgrade_database  # noqa: E402
from app.runtime import runtime_of  # noqa: E402
from app.tokens.service import TokenService  # noqa: E402
from tests.integration.audit.ledger_fill import BRANCHES, START, fill, repository_name  # noqa: E402
from tests.support.openbao import OpenBaoServer  # noqa: E402

PG = {
    "host": os.environ.get("TRANSOM_TEST_PG_HOST", "127.0.0.1"),
    "port": int(os.environ.get("TRANSOM_TEST_PG_PORT", "5432")),
    "user": os.environ.get("TRANSOM_TEST_PG_USER", "postgres"),
}
STEP = timedelta(seconds=7)
REPOSITORIES = 50
RANGE = timedelta(days=3)
PAGE_TARGET_MS = 50.0
PROOF_TARGET_MS = 20.0
VERIFY_TARGET = 20_000  # events/s
INTEGRATION_BATCH = 1000  # the sequencer's own batch size
QUICK_EVENTS = 100_000
QUICK_QUERIES = 100


@contextmanager
def scratch_database(keep: bool) -> Iterator[str]:
    name = f"transom_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(**PG, dbname="postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"postgresql+psycopg://{PG['user']}@{PG['host']}:{PG['port']}/{name}"
    finally:
        if keep:
            print(f"kept database {name}", file=sys.stderr)
        else:
            with psycopg.connect(**PG, dbname="postgres", autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _proc_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak_rss() -> None:
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK_EVENTS:,} events, {QUICK_QUERIES} queries"
    )
    args = parser.parse_args()
    if args.quick:
        args.events, args.queries = QUICK_EVENTS, QUICK_QUERIES
    rng = random.Random(args.seed)
    rows: list[tuple[str, str]] = []

    with scratch_database(args.keep) as url, OpenBaoServer(log_dir=Path(tempfile.mkdtemp())) as vault:
        vault.ensure_baseline(None)  # the log's transit key, as `transom dev` creates it
        upgrade_database(url)
        app = create_app(
            {"env": "test", "database_url": url, "vault_addr": vault.addr, "vault_token": vault.root_token}
        )
        runtime = runtime_of(app)

        started = time.perf_counter()
        fill(runtime.engine, args.events, chunk=10_000, step=STEP, repositories=REPOSITORIES, seed=args.seed)
        filled = time.perf_counter() - started
        with runtime.engine.connect() as conn:
            conn.execute(text("ANALYZE audit_events"))
            conn.commit()
        clock = SystemClock()
        with transaction(runtime.sessions) as session:
            token = (
                TokenService(session, clock, Ledger(session, clock))
                .create_token("bench", "auditor", None, actor=Actor("system", "bench"))
                .token
            )
        rows.append(("events in the ledger", f"{args.events:,} (filled in {filled:.0f} s)"))

        # --- integration into the Merkle log ------------------------------------------------------------
        sessions = make_session_factory(runtime.engine)
        started = time.perf_counter()
        while (batch := integrate_batch(sessions, clock, limit=INTEGRATION_BATCH)).pending_left:
            pass
        integrated = time.perf_counter() - started
        size = batch.size
        checkpoint = publish_checkpoint(
            sessions, runtime.ledger_signer, clock, runtime.settings.ledger_origin
        )
        assert checkpoint is not None and checkpoint.size == size, "no checkpoint was signed"
        with runtime.engine.connect() as conn:
            conn.execute(text("ANALYZE ledger_leaves; ANALYZE ledger_hashes"))
            conn.commit()
        rows.append(
            (
                "integration (the sequencer, batches of 1,000)",
                f"{size / integrated:,.0f} events/s ({size:,} events in {integrated:.0f} s)",
            )
        )
        headers = {"Authorization": f"Bearer {token}"}
        client = app.test_client()

        def timed_get(path: str, params: dict[str, str]) -> tuple[float, dict[str, object]]:
            t0 = time.perf_counter()
            response = client.get(path, query_string=params, headers=headers)
            elapsed = (time.perf_counter() - t0) * 1000
            assert response.status_code == 200, (path, params, response.get_json())
            return elapsed, response.get_json()

        # --- proofs through the API -------------------------------------------------------------------
        inclusion: list[float] = []
        consistency: list[float] = []
        for i in range(args.queries + 20):
            index = rng.randrange(size)
            tree_size = size if i % 2 else rng.randint(index + 1, size)  # the whole tree, or an older one
            elapsed, _ = timed_get("/v1/audit/proof/inclusion", {"index": str(index), "size": str(tree_size)})
            old = rng.randint(1, size)
            took, _ = timed_get(
                "/v1/audit/proof/consistency", {"from": str(old), "to": str(rng.randint(old, size))}
            )
            if i >= 20:  # warm-up
                inclusion.append(elapsed)
                consistency.append(took)
        for name, proof_timings in (("inclusion proof", inclusion), ("consistency proof", consistency)):
            p95 = percentile(proof_timings, 0.95)
            verdict = "meets" if p95 <= PROOF_TARGET_MS else "MISSES"
            rows.append(
                (
                    f"{name} (random positions and sizes up to {size:,})",
                    f"p50 {statistics.median(proof_timings):.1f} ms · p95 {p95:.1f} ms · p99"
                    f" {percentile(proof_timings, 0.99):.1f} ms ({verdict} the {PROOF_TARGET_MS:.0f} ms"
                    f" target; {len(proof_timings)} queries)",
                )
            )

        # --- verification of the whole log --------------------------------------------------------------
        elapsed, result = timed_get("/v1/audit/verify", {})
        assert result["ok"] is True and result["checked"] == size, result
        rate = size / (elapsed / 1000)
        verdict = "meets" if rate >= VERIFY_TARGET else "MISSES"
        rows.append(
            (
                "GET /v1/audit/verify (every leaf, the root, the signature)",
                f"{rate:,.0f} events/s ({elapsed / 1000:.1f} s; {verdict} the {VERIFY_TARGET:,}/s target)",
            )
        )

        # --- filtered pages ----------------------------------------------------------------------------
        span = STEP * args.events
        window = min(RANGE, span / 4)
        timings: list[float] = []
        found: list[int] = []
        for i in range(args.queries + 20):
            after = START + (span - window) * rng.random()
            params = {
                "repository": repository_name(rng.randrange(REPOSITORIES)),
                "branch": rng.choice(BRANCHES),
                "after": format_instant(after),
                "before": format_instant(after + window),
                "limit": "100",
            }
            t0 = time.perf_counter()
            response = client.get("/v1/audit/events", query_string=params, headers=headers)
            elapsed = (time.perf_counter() - t0) * 1000
            assert response.status_code == 200, response.get_json()
            if i >= 20:  # warm-up
                timings.append(elapsed)
                found.append(len(response.get_json()["items"]))
        p95 = percentile(timings, 0.95)
        verdict = "meets" if p95 <= PAGE_TARGET_MS else "MISSES"
        rows.append(
            (
                f"filtered page (repository + branch + {window / timedelta(days=1):.3g}-day range,"
                " limit 100)",
                f"p50 {statistics.median(timings):.1f} ms · p95 {p95:.1f} ms"
                f" · p99 {percentile(timings, 0.99):.1f} ms"
                f" ({verdict} the {PAGE_TARGET_MS:.0f} ms target; {statistics.mean(found):.0f} rows/page avg,"
                f" {args.queries} queries)",
            )
        )

        # --- one pipeline's refusals (the lease page): a JSON path in details -------------------------
        with runtime.engine.connect() as conn:
            samples = conn.execute(
                text(
                    "SELECT repository, details #>> '{identity,pipeline_id}' FROM audit_events"
                    " WHERE action = 'lease.denied' ORDER BY random() LIMIT :n"
                ),
                {"n": 100},
            ).all()
        timings = []
        for repository, pipeline_id in samples:
            params = {"action": "lease.denied", "repository": repository, "pipeline_id": pipeline_id}
            t0 = time.perf_counter()
            response = client.get("/v1/audit/events", query_string=params, headers=headers)
            timings.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200 and response.get_json()["items"], params
        rows.append(
            (
                "a pipeline's refusals (action + repository + details.identity.pipeline_id)",
                f"p50 {statistics.median(timings):.1f} ms · p95 {percentile(timings, 0.95):.1f} ms"
                f" ({len(samples)} queries)",
            )
        )

        # --- CSV export --------------------------------------------------------------------------------
        rss_before = _proc_kib("VmRSS")
        _reset_peak_rss()
        t0 = time.perf_counter()
        response = client.get("/v1/audit/events?format=csv", headers=headers, buffered=False)
        lines = 0
        size = 0
        for chunk in response.response:
            lines += chunk.count(b"\n")
            size += len(chunk)
        response.close()
        elapsed = time.perf_counter() - t0
        growth = max(_proc_kib("VmHWM") - rss_before, 0) / 1024
        exported = lines - 1
        rows.append(
            (
                "CSV export of every event",
                f"{exported / elapsed:,.0f} rows/s"
                f" ({exported:,} rows, {size / 2**20:,.0f} MiB in {elapsed:.1f} s);"
                f" peak RSS grew {growth:.1f} MiB",
            )
        )

        runtime.engine.dispose()

    print(f"\n### Audit ledger on PostgreSQL, {args.events:,} events\n")
    print("| measure | result |")
    print("|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
