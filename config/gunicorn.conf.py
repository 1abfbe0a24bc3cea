"""gunicorn settings for `transom serve`.

Environment overrides: TRANSOM_BIND, TRANSOM_WORKERS, TRANSOM_THREADS.

SQLite takes one writer at a time, and threads inside one process then queue on its lock with back-off
(p95 of 200-470 ms measured under load), so on SQLite the default is sync workers; on PostgreSQL threaded
workers serve many concurrent CI jobs per process.

TRANSOM_SCHEDULER=embedded runs the scheduler inside the gunicorn worker (started once the worker has loaded
the app, stopped when it exits). Every process that runs it runs every job, so there must be exactly one:
gunicorn then runs a single worker, and refuses to start when TRANSOM_WORKERS asks for more. For more
throughput, leave the scheduler off and run `transom worker` processes beside any number of API workers.
"""

import multiprocessing
import os
from typing import Any

from app.settings import load_settings
from app.scheduler.runner import start_embedded

_embedded = load_settings().scheduler == "embedded"

_database = os.environ.get("TRANSOM_DATABASE_URL", "")
_on_postgres = _database.startswith("postgresql")

bind = os.environ.get("TRANSOM_BIND", "127.0.0.1:8080")
workers = int(os.environ.get("TRANSOM_WORKERS", str(min(4, multiprocessing.cpu_count() * 2))))
if _embedded:
    if "TRANSOM_WORKERS" in os.environ and workers != 1:
        raise SystemExit(
            "TRANSOM_SCHEDULER=embedded runs the scheduler inside the gunicorn worker, so it needs "
            f"exactly one (TRANSOM_WORKERS={workers}). Set TRANSOM_WORKERS=1, or set "
            "TRANSOM_SCHEDULER=off and run `transom worker` beside the API."
        )
    workers = 1
worker_class = "gthread" if _on_postgres else "sync"
threads = int(os.environ.get("TRANSOM_THREADS", "8" if _on_postgres else "1"))
timeout = 60
graceful_timeout = 30
keepalive = 5
# Oversized CI tokens must reach the app, which answers them with problem JSON (malformed_token).
limit_request_field_size = 32768
accesslog = "-"
errorlog = "-"
# The access log shows paths and statuses only; never headers, which hold bearer credentials.
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(L)ss'


def post_worker_init(worker: Any) -> None:
    if _embedded:
        worker.transom_scheduler = start_embedded(worker.wsgi)


def worker_exit(server: Any, worker: Any) -> None:
    scheduler = getattr(worker, "transom_scheduler", None)
    if scheduler is not None and scheduler.running:
        scheduler.shutdown()
