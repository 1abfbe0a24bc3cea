"""`transom serve` with TRANSOM_SCHEDULER=embedded: one gunicorn worker, and the scheduler runs inside it."""

from __future__ import annotations

import os
import signal
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
from sqlalchemy.orm import Session, sessionmaker

from app.db import make_engine, make_session_factory
from app.leases.models import LeaseStatus
from app.vault.hvac_backend import HvacBackend
from tests.e2e.scheduler.worker_processes import PROJECT_ROOT, TRANSOM, wait_until, worker_env
from tests.integration.scheduler.lease_seeding import load_lease, seed_leases, token_works
from tests.support.openbao import OpenBaoServer
from tests.support.processes import free_port


def test_the_single_gunicorn_worker_runs_the_scheduler_and_revokes_on_time(
    database_url: str, vault: OpenBaoServer, tmp_path: Path
) -> None:
    port = free_port()
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [*TRANSOM, "serve", "--port", str(port)],
            env=worker_env(database_url, vault, TRANSOM_SCHEDULER="embedded"),
            cwd=PROJECT_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # gunicorn's master and worker: stopped together below
        )
    engine = make_engine(database_url)
    sessions: sessionmaker[Session] = make_session_factory(engine)
    try:
        assert wait_until(lambda: _healthy(port), timeout=30), log_path.read_text()
        now = datetime.now(UTC)
        with HvacBackend(vault.addr, token=vault.root_token) as backend:
            [lease] = seed_leases(
                sessions,
                backend,
                [now + timedelta(seconds=3)],
                now=now,
                kind="token",
                vault_ttl=timedelta(minutes=2),
            )
        assert wait_until(lambda: load_lease(sessions, lease.id).status == LeaseStatus.EXPIRED, timeout=6)
        row = load_lease(sessions, lease.id)
        assert row.ended_at is not None and row.ended_at - row.expires_at < timedelta(seconds=2)
        assert not token_works(vault, lease.token or "")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        engine.dispose()
    output = log_path.read_text()
    assert output.count("Booting worker with pid") == 1  # the default would be several
    assert "embedded scheduler started" in output
    assert "Traceback" not in output


def test_serve_refuses_several_workers_with_the_embedded_scheduler(
    database_url: str, vault: OpenBaoServer
) -> None:
    result = subprocess.run(
        [*TRANSOM, "serve", "--port", str(free_port())],
        env=worker_env(database_url, vault, TRANSOM_SCHEDULER="embedded", TRANSOM_WORKERS="3"),
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "needs exactly one (TRANSOM_WORKERS=3)" in result.stderr


def _healthy(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except (requests.ConnectionError, requests.Timeout):  # not up yet, or slow to answer under load
        return False
