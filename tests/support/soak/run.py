"""One soak from start to end: set up, load, drain, check, take down."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

from app.leases.models import Lease, LeaseStatus
from app.scheduler.revocations import CLAIM_TIMEOUT
from tests.support.soak.checks import (
    Check,
    access_log_5xx,
    client_checks,
    database_figures,
    few,
    lease_checks,
    ledger_check,
    log_errors,
    revocation_check,
    rss_checks,
)
from tests.support.soak.cluster import SoakCluster
from tests.support.soak.inventory import VaultInventory, end_leaks, leftover_roles, snapshot_leaks
from tests.support.soak.load import LoadDriver, Stats
from tests.support.soak.options import DRAIN_MARGIN, RSS_SAMPLE_EVERY, SETTLE_MARGIN, SoakOptions
from tests.support.soak.report import SoakReport


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
            f"{report.snapshots} snapshots; leaks {few(leaks, 3)}",
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
    report.checks.append(ledger_check(cluster.sessions, cluster.vault))
    leaks, report.end_alive, report.end_accessors = end_leaks(cluster, VaultInventory(cluster.vault))
    report.checks.append(
        Check(
            "no credential alive at Vault without an active lease (at the end)",
            not leaks,
            f"{report.end_alive} alive; {few(leaks, 3)} without an active lease",
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
            f"{served_5xx} 5xx in the access logs; error lines {few(errors, 3)}",
        )
    )
