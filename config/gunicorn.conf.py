"""gunicorn settings for `transom serve`.

Environment overrides: TRANSOM_BIND, TRANSOM_WORKERS, TRANSOM_THREADS, TRANSOM_GRACEFUL_TIMEOUT (SIGTERM:
seconds to finish the requests in flight, default 30), and the settings TRANSOM_KEEPALIVE_SECONDS
(keep-alive, default 75 s: above a load balancer's idle timeout, so the balancer, not gunicorn, closes an
idle pooled connection and never races a request onto a closing one) and TRANSOM_LOG_FORMAT (json unless
set: the access, error and app logs all use app.logs' line formatter).

SQLite takes one writer at a time, and threads inside one process then queue on its lock with back-off
(p95 of 200-470 ms measured under load), so on SQLite each worker runs one thread; on PostgreSQL eight
threads per worker serve many concurrent CI jobs per process.

TRANSOM_SCHEDULER=embedded runs the scheduler inside the gunicorn worker (started once the worker has loaded
the app, stopped when it exits). Every process that runs it runs every job, so there must be exactly one:
gunicorn then runs a single worker, and refuses to start when TRANSOM_WORKERS asks for more. For more
throughput, leave the scheduler off and run `transom worker` processes beside any number of API workers.
"""

import multiprocessing
import os
from typing import Any

from gunicorn.glogging import Logger

from app.logs import use_line_format
from app.scheduler.runner import start_embedded
from app.serving import DrainingThreadWorker
from app.settings import load_settings

os.environ.setdefault("TRANSOM_LOG_FORMAT", "json")  # before the workers load the app, which reads it
_settings = load_settings()
_embedded = _settings.scheduler == "embedded"

_database = os.environ.get("TRANSOM_DATABASE_URL", "")
_on_postgres = _database.startswith("postgresql")

bind = os.environ.get("TRANSOM_BIND", "127.0.0.1:8080")
# One process per core (at most 4): measured on 2 cores with PostgreSQL, 4 processes x 8 threads issued
# 46-52 leases/s at c=16 against 74-76 for 2 x 8, the extra processes only contending for the same cores
# (docs/BENCHMARKS.md, "Serving").
workers = int(os.environ.get("TRANSOM_WORKERS", str(min(4, multiprocessing.cpu_count()))))
if _embedded:
    if "TRANSOM_WORKERS" in os.environ and workers != 1:
        raise SystemExit(
            "TRANSOM_SCHEDULER=embedded runs the scheduler inside the gunicorn worker, so it needs "
            f"exactly one (TRANSOM_WORKERS={workers}). Set TRANSOM_WORKERS=1, or set "
            "TRANSOM_SCHEDULER=off and run `transom worker` beside the API."
        )
    workers = 1
# Threaded on both databases (one thread per worker on SQLite): it keeps connections alive, and on SIGTERM
# answers every connection already let in and refuses the rest (app/serving.py).
worker_class = DrainingThreadWorker
threads = int(os.environ.get("TRANSOM_THREADS", "8" if _on_postgres else "1"))
timeout = 60
# SIGTERM: stop accepting and finish the requests in flight within this many seconds, then exit. Above the
# Vault timeout, so a lease being issued is finished rather than left to the scheduler's recovery.
graceful_timeout = int(os.environ.get("TRANSOM_GRACEFUL_TIMEOUT", "30"))
keepalive = _settings.keepalive_seconds
# Oversized CI tokens must reach the app, which answers them with problem JSON (malformed_token).
limit_request_field_size = 32768
accesslog = "-"
errorlog = "-"
# The access log shows paths (no query string) and statuses only, and of the headers only the response's
# request id; never a request header, which may hold a bearer credential.
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(L)ss'


class TransomLogger(Logger):
    """gunicorn's logger, with its access and error lines written by app.logs' formatter."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                use_line_format(handler, _settings.log_format or "json")


logger_class = TransomLogger


def when_ready(server: Any) -> None:
    server.log.info(
        "serving on %s: %d worker(s), keepalive %s s, graceful timeout %s s",
        ",".join(server.cfg.bind),
        server.cfg.workers,
        server.cfg.keepalive,
        server.cfg.graceful_timeout,
    )


def post_worker_init(worker: Any) -> None:
    if _embedded:
        worker.transom_scheduler = start_embedded(worker.wsgi)


def worker_exit(server: Any, worker: Any) -> None:
    scheduler = getattr(worker, "transom_scheduler", None)
    if scheduler is not None and scheduler.running:
        scheduler.shutdown()
