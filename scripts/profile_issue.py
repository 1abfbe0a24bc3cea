"""Where one lease's milliseconds go: ``POST /v1/leases`` (token kind) in-process, on PostgreSQL and OpenBao.

The app is the tests' (Flask's test client, no HTTP server), the database a fresh PostgreSQL one, Vault the
real OpenBao dev server. After a warm-up (JWKS fetched, caches filled) it issues ``--leases`` leases one
after the other and reports, per lease: wall and Python CPU time, SQL statements and commits (SQLAlchemy
``before_cursor_execute`` and ``commit`` events), Vault round trips by path, and cProfile's heaviest
functions, grouped by package.

    PYTHONPATH=. .venv/bin/python scripts/profile_issue.py [--leases 300] [--live 0] [--top 25]

``--live N`` first issues N leases and keeps them live, to show what grows with the number of live tokens.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import re
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import event

from app import create_app
from app.runtime import runtime_of
from app.vault.transport import PooledAdapter
from tests.integration.conftest import create_broker_token
from tests.support.broker import Broker
from tests.support.databases import PostgresDatabases
from tests.support.oidc_issuer import OidcIssuer
from tests.support.openbao import OpenBaoServer

SECRET = "prod-vault-token"
# Nested steps of one POST /v1/leases: (what, file suffix, function); cumulative times, so steps nest.
PHASES = (
    ("the whole request (Flask test client)", "flask/app.py", "wsgi_app"),
    ("verify the ID token (auth.py)", "app/auth.py", "_verify_workload"),
    ("the lease operation (Issuance.request_lease)", "app/leases/issuance.py", "request_lease"),
    ("  Vault call and activation (Issuance._issue)", "app/leases/issuance.py", "_issue"),
    ("    Vault: token create + lookup (HvacBackend.issue)", "app/vault/hvac_backend.py", "issue"),
    ("    activation transaction (activation.activate)", "app/leases/activation.py", "activate"),
    ("  of all steps: SQLAlchemy commits (Session.commit)", "sqlalchemy/orm/session.py", "commit"),
    ("response: the schema's dump (marshmallow)", "marshmallow/schema.py", "dump"),
)


class Counters:
    """SQL statements, commits and Vault requests while ``counting`` is on."""

    def __init__(self) -> None:
        self.counting = False
        self.statements: Counter[str] = Counter()
        self.commits = 0
        self.vault: Counter[str] = Counter()

    def install(self, engine: Any, vault_addr: str) -> None:
        @event.listens_for(engine, "before_cursor_execute")
        def _statement(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            if self.counting:
                self.statements[_shape(statement)] += 1

        @event.listens_for(engine, "commit")
        def _commit(_conn: Any) -> None:
            if self.counting:
                self.commits += 1

        send = PooledAdapter.request
        counters = self

        def counted_send(adapter: PooledAdapter, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            if counters.counting:
                path = url.split("?", 1)[0]
                counters.vault[f"{method} {re.sub(r'/h[0-9a-f]{20,}', '/h…', path)}"] += 1
            return send(adapter, method, url, *args, **kwargs)

        PooledAdapter.request = counted_send  # type: ignore[method-assign,assignment]


def _shape(statement: str) -> str:
    words = " ".join(statement.split())
    return words[:90] + ("…" if len(words) > 90 else "")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--leases", type=int, default=300)
    parser.add_argument("--live", type=int, default=0, help="leases issued (and kept live) before timing")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--dump", type=Path, help="also write cProfile's statistics here (pstats format)")
    args = parser.parse_args()

    databases = PostgresDatabases()
    vault = OpenBaoServer(log_dir=Path(tempfile.mkdtemp()))
    vault.ensure_baseline(None)
    try:
        with OidcIssuer() as issuer:
            app = create_app(
                {
                    "env": "test",
                    "database_url": databases.fresh(),
                    "vault_addr": vault.addr,
                    "vault_token": vault.root_token,
                    "allow_insecure_issuers": True,
                }
            )
            broker = Broker.configured(app, create_broker_token(app, "admin"), issuer, vault)
            counters = Counters()
            counters.install(runtime_of(app).engine, vault.addr)

            def tokens(n: int) -> list[str]:
                return [broker.ci_token(run_id=str(uuid.uuid4().int % 10**12)) for _ in range(n)]

            def issue(token: str) -> None:
                response = broker.request_lease(SECRET, token, ttl="10m")
                if response.status_code != 201:
                    raise RuntimeError(f"lease refused: {response.status_code} {response.get_data()[:200]!r}")

            for token in tokens(args.live + 20):  # warm-up: JWKS, snapshot, pools, statement caches
                issue(token)

            batch = tokens(args.leases)
            counters.counting = True
            wall, cpu = time.perf_counter(), time.process_time()
            for token in batch:
                issue(token)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            counters.counting = False

            profiled = tokens(args.leases)
            profiler = cProfile.Profile()
            profiler.enable()
            for token in profiled:
                issue(token)
            profiler.disable()
    finally:
        vault.stop()
        databases.drop_all()

    n = args.leases
    print(
        f"## One lease, in-process ({n} leases, token kind, PostgreSQL, OpenBao; {args.live} live before)\n"
    )
    print(f"- wall {wall / n * 1000:.2f} ms per lease; Python CPU {cpu / n * 1000:.2f} ms per lease")
    statements = sum(counters.statements.values())
    print(f"- SQL statements per lease: {statements / n:.1f}; commits per lease: {counters.commits / n:.1f}")
    for shape, count in counters.statements.most_common():
        print(f"    {count / n:4.1f}  {shape}")
    print(f"- Vault round trips per lease: {sum(counters.vault.values()) / n:.1f}")
    for path, count in counters.vault.most_common():
        print(f"    {count / n:4.1f}  {path}")

    stats = pstats.Stats(profiler)
    if args.dump:
        stats.dump_stats(args.dump)
    profiled_total = 0.0
    phases: list[tuple[str, float]] = []
    for label, suffix, function in PHASES:
        cumulative = max(
            (
                ct
                for (filename, _line, name), (_cc, _nc, _tt, ct, _callers) in stats.stats.items()  # type: ignore[attr-defined]
                if name == function and filename.replace("\\", "/").endswith(suffix)
            ),
            default=0.0,
        )
        profiled_total = profiled_total or cumulative
        phases.append((label, cumulative))
    print("\n## Steps (cProfile cumulative: share of the request, scaled to the unprofiled wall)\n")
    for label, cumulative in phases:
        share = cumulative / profiled_total if profiled_total else 0.0
        print(f"- {label}: {share:.0%} ≈ {share * wall / n * 1000:.1f} ms")
    by_package: Counter[str] = Counter()
    for (filename, _line, _name), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        by_package[_package(filename)] += tottime
    total = sum(by_package.values())
    print(f"\n## Own time by package (cProfile, {n} leases; {total / n * 1000:.2f} ms per lease profiled)\n")
    for package, seconds in by_package.most_common(15):
        print(f"- {package}: {seconds / n * 1000:.2f} ms ({seconds / total:.0%})")
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(args.top)
    print("\n## Heaviest by cumulative time\n\n```")
    print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[-6000:])
    print("```")
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(args.top)
    print("\n## Heaviest by own time\n\n```")
    print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[-6000:])
    print("```")


def _package(filename: str) -> str:
    path = filename.replace("\\", "/")
    if "/site-packages/" in path:
        return path.split("/site-packages/", 1)[1].split("/", 1)[0]
    match = re.search(r"/(app/[a-z_]+)", path)
    if match:
        return match.group(1)
    if path.startswith("<") or "/lib/python3" in path:
        return "python (stdlib, builtins)"
    return path.rsplit("/", 2)[-2] if "/" in path else path


if __name__ == "__main__":
    main()
