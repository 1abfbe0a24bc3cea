"""APScheduler wiring: which job runs when, in `transom worker` (BlockingScheduler, any number of processes)
or embedded (BackgroundScheduler inside the one process of `transom dev` or a single-worker `transom serve`).

Timeliness. Expiries and revocation retries are not an interval job: one long-running job, the
:class:`Sweeper`, sweeps whatever is due, asks the database when the next lease falls due (``next_due``) and
sleeps until then, a second at most. A lease is therefore revoked a few milliseconds after its
``expires_at``, not up to an interval later; the one-second cap bounds the lag of a lease created while the
sweeper slept with an expiry earlier than the one it was waiting for (renewals only move expiries later).
A long-running job was chosen over re-adding a ``date`` trigger from inside the job: APScheduler removes a
finished date job while it may still be running, and the loop keeps the wake-up arithmetic in one place.

The other jobs run on intervals, each also once at start: freezes every second (a freeze's leases are
revoked within a second of its start), stuck ``issuing`` leases every 15 s, the lease gauges every 5 s, JWKS
every 30 s (each issuer is fetched only when its copy nears expiry), replay records every 5 minutes.
Overdue work of any kind is picked up on start (restart recovery).

The ledger's sequencer is a long-running job too (``app.audit.sequencer``): it integrates committed events
into the log within a fraction of a second and publishes a signed checkpoint at most once a second; in a
fleet of workers one at a time does, the others wait on its lock.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from types import FrameType
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from flask import Flask

from app.audit.sequencer import Sequencer
from app.db import install_session_listeners
from app.metrics import scheduler_metrics
from app.runtime import Runtime, runtime_of
from app.scheduler import jobs
from app.scheduler.revocations import BATCH_SIZE, CLAIM_TIMEOUT, REVOKE_THREADS, SweepResult

log = logging.getLogger(__name__)

MAX_SLEEP = 1.0  # seconds: the longest the sweeper sleeps without looking
IDLE_SLEEP = 0.05  # rows are due but none could be claimed (another worker holds them for a moment)
ERROR_SLEEP = 1.0  # the database or something else failed: try again shortly
JOB_THREADS = 8

INTERVALS = {  # seconds
    "enforce_freezes": 1,
    "refresh_lease_gauges": 5,
    "recover_stuck_issuing": 15,
    "refresh_jwks": 30,
    "purge_seen_tokens": 300,
}


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    batch_size: int = BATCH_SIZE
    threads: int = REVOKE_THREADS  # concurrent Vault revocations per batch
    claim_timeout: timedelta = CLAIM_TIMEOUT
    issuing_grace: timedelta = jobs.ISSUING_GRACE


def wait_seconds(due: datetime | None, now: datetime, *, worked: bool) -> float:
    """How long the sweeper sleeps: until ``due``, at most ``MAX_SLEEP``; not at all after a sweep that
    found work, a moment when something is due that could not be claimed."""
    if due is None:
        return MAX_SLEEP
    floor = 0.0 if worked else IDLE_SLEEP
    return min(MAX_SLEEP, max(floor, (due - now).total_seconds()))


class Sweeper:
    """Expire due leases and retry due revocations, waking for the next one due."""

    def __init__(self, runtime: Runtime, options: WorkerOptions, stop: threading.Event) -> None:
        self._rt = runtime
        self._options = options
        self._stop = stop

    def run(self) -> None:
        log.info("sweeper started")
        while not self._stop.is_set():
            self._stop.wait(self.sweep_once())
        log.info("sweeper stopped")

    def sweep_once(self) -> float:
        """One sweep; returns how long to sleep before the next."""
        rt, options = self._rt, self._options
        common: dict[str, Any] = {
            "batch_size": options.batch_size,
            "threads": options.threads,
            "claim_timeout": options.claim_timeout,
        }
        try:
            expired = jobs.expire_due_leases(rt.sessions, rt.vault, rt.clock, **common)
            retried = jobs.retry_revocations(rt.sessions, rt.vault, rt.clock, **common)
            due = jobs.next_due(rt.sessions)
        except Exception:
            log.exception("sweep failed; trying again in %.0f s", ERROR_SLEEP)
            return ERROR_SLEEP
        _report(expired, retried)
        return wait_seconds(due, rt.clock.now(), worked=bool(expired.claimed or retried.claimed))


def _report(expired: SweepResult, retried: SweepResult) -> None:
    if expired.claimed or retried.claimed:
        log.info(
            "swept: %d expiring, %d retried; %d ended, %d failed",
            expired.claimed,
            retried.claimed,
            expired.ended + retried.ended,
            expired.failed + retried.failed,
        )


class WorkerScheduler(BlockingScheduler):  # type: ignore[misc]  # APScheduler 3 ships no type hints
    """`transom worker`'s scheduler; ``shutdown()`` as in :class:`EmbeddedScheduler`."""

    def __init__(self, stop: threading.Event, **options: Any) -> None:
        super().__init__(**options)
        self.stop_event = stop

    def shutdown(self, wait: bool = True) -> None:
        _before_shutdown(self, self.stop_event)
        super().shutdown(wait)


class EmbeddedScheduler(BackgroundScheduler):  # type: ignore[misc]
    """The embedded scheduler. ``shutdown()`` stops the sweeper at once and lets the jobs running finish."""

    def __init__(self, stop: threading.Event, **options: Any) -> None:
        super().__init__(**options)
        self.stop_event = stop

    def shutdown(self, wait: bool = True) -> None:
        _before_shutdown(self, self.stop_event)
        super().shutdown(wait)


def _before_shutdown(scheduler: Any, stop: threading.Event) -> None:
    stop.set()
    # With no jobs left, APScheduler's loop cannot wake during shutdown and hand a due job to an executor
    # that is shutting down (which it would log as an error with a traceback).
    scheduler.remove_all_jobs()


def configure(
    scheduler: WorkerScheduler | EmbeddedScheduler, runtime: Runtime, options: WorkerOptions
) -> None:
    """Add every job to ``scheduler``; they start with it."""
    rt = runtime
    sweeper = Sweeper(rt, options, scheduler.stop_event)
    scheduler.add_job(sweeper.run, id="sweeper", name="expire leases and retry revocations")
    sequencer = Sequencer(
        rt.sessions,
        rt.ledger_signer,
        rt.clock,
        rt.settings.ledger_origin,
        scheduler.stop_event,
        metrics=scheduler_metrics(),
    )
    scheduler.add_job(sequencer.run, id="sequencer", name="integrate the ledger and sign checkpoints")
    periodic: dict[str, Callable[[], object]] = {
        "enforce_freezes": partial(jobs.enforce_freezes, rt.sessions, rt.vault, rt.clock),
        "refresh_lease_gauges": partial(jobs.refresh_lease_gauges, rt.sessions, rt.clock),
        "recover_stuck_issuing": partial(
            jobs.recover_stuck_issuing,
            rt.sessions,
            rt.vault,
            rt.clock,
            grace=options.issuing_grace,
            batch_size=options.batch_size,
            threads=options.threads,
            claim_timeout=options.claim_timeout,
        ),
        "refresh_jwks": partial(jobs.refresh_jwks, rt.sessions, rt.jwks),
        "purge_seen_tokens": partial(jobs.purge_seen_tokens, rt.sessions, rt.clock),
    }
    now = datetime.now(UTC)
    for name, job in periodic.items():
        scheduler.add_job(
            job, "interval", seconds=INTERVALS[name], id=name, name=name.replace("_", " "), next_run_time=now
        )
    jobs.schedule_approval_jobs(scheduler, rt)  # approvals' expiry and notifications (issue 15)


SCHEDULER_OPTIONS: dict[str, Any] = {
    "timezone": UTC,
    # One run of a job at a time per process; a late run still runs, once.
    "job_defaults": {"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
}


def _quiet_apscheduler() -> None:
    # At INFO it logs every run of every job (the freeze job runs each second); warnings and errors stay.
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, logging.getLogger().level))


def start_embedded(app: Flask, options: WorkerOptions | None = None) -> BackgroundScheduler:
    """Run every job inside this process, on background threads, and return the started scheduler; its
    ``shutdown()`` stops them. For ONE process only (`transom dev`, a single-worker `transom serve`): every
    process that calls this runs every job."""
    _quiet_apscheduler()
    scheduler = EmbeddedScheduler(
        threading.Event(), executors={"default": ThreadPoolExecutor(JOB_THREADS)}, **SCHEDULER_OPTIONS
    )
    configure(scheduler, runtime_of(app), options or WorkerOptions())
    scheduler.start()
    log.info("embedded scheduler started")
    return scheduler


def run_worker(runtime: Runtime, options: WorkerOptions) -> None:
    """`transom worker`: run every job until SIGTERM or SIGINT, then let the batch in flight settle."""
    _quiet_apscheduler()
    install_session_listeners()  # before any job opens a session
    scheduler = WorkerScheduler(
        threading.Event(), executors={"default": ThreadPoolExecutor(JOB_THREADS)}, **SCHEDULER_OPTIONS
    )
    configure(scheduler, runtime, options)
    # shutdown() waits for the running jobs, so not from inside the signal handler: from this thread.
    stopper = threading.Thread(target=scheduler.shutdown, name="transom-shutdown")

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        if not stopper.is_alive() and not scheduler.stop_event.is_set():
            log.info("stopping (%s)", signal.Signals(signum).name)
            stopper.start()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    log.info("worker started")
    scheduler.start()  # returns once the scheduler is stopped
    if stopper.is_alive():
        stopper.join()
    log.info("worker stopped")
