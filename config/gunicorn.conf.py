"""gunicorn settings for `transom serve`. Environment overrides: TRANSOM_BIND, TRANSOM_WORKERS, TRANSOM_THREADS.

SQLite takes one writer at a time, and threads inside one process then queue on its lock with back-off
(p95 of 200-470 ms measured under load), so on SQLite the default is sync workers; on PostgreSQL threaded
workers serve many concurrent CI jobs per process.
"""

import multiprocessing
import os

_database = os.environ.get("TRANSOM_DATABASE_URL", "")
_on_postgres = _database.startswith("postgresql")

bind = os.environ.get("TRANSOM_BIND", "127.0.0.1:8080")
workers = int(os.environ.get("TRANSOM_WORKERS", str(min(4, multiprocessing.cpu_count() * 2))))
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
