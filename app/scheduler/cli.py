"""`transom worker`: the scheduler process. Run as many as you like against one PostgreSQL; one on SQLite."""

from __future__ import annotations

from datetime import timedelta

import click
from prometheus_client import start_http_server

from app.clock import SystemClock
from app.logs import configure_logging
from app.runtime import build_runtime
from app.scheduler.revocations import BATCH_SIZE, CLAIM_TIMEOUT, REVOKE_THREADS
from app.scheduler.runner import WorkerOptions, run_worker
from app.settings import ConfigError, load_settings


@click.command()
@click.option(
    "--metrics-port", type=click.IntRange(1, 65535), default=None, help="Serve /metrics on this port."
)
@click.option("--metrics-host", default="127.0.0.1", show_default=True, help="Address for --metrics-port.")
@click.option(
    "--batch-size",
    type=click.IntRange(1, 1000),
    default=BATCH_SIZE,
    show_default=True,
    help="Leases claimed per transaction.",
)
@click.option(
    "--threads",
    type=click.IntRange(1, 64),
    default=REVOKE_THREADS,
    show_default=True,
    help="Concurrent revocations at Vault.",
)
@click.option(
    "--claim-timeout",
    type=click.FloatRange(1, 3600),
    default=CLAIM_TIMEOUT.total_seconds(),
    show_default=True,
    help="Seconds after which a lease claimed by a worker that died is taken up by another.",
)
def worker(
    metrics_port: int | None, metrics_host: str, batch_size: int, threads: int, claim_timeout: float
) -> None:
    """Run the scheduler: expiry, revocation retries, freezes, recovery, JWKS refresh."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    configure_logging(settings.log_level, settings.log_format or "json")
    if metrics_port is not None:
        try:
            start_http_server(metrics_port, addr=metrics_host)
        except OSError as exc:
            raise click.ClickException(
                f"cannot serve metrics on {metrics_host}:{metrics_port}: {exc.strerror}"
            ) from None
    runtime = build_runtime(settings, clock=SystemClock())
    options = WorkerOptions(
        batch_size=batch_size, threads=threads, claim_timeout=timedelta(seconds=claim_timeout)
    )
    try:
        run_worker(runtime, options)
    finally:
        runtime.engine.dispose()
