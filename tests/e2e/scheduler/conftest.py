"""Worker processes against a fresh PostgreSQL database and the real OpenBao."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from app.db import make_engine, make_session_factory
from app.vault.hvac_backend import HvacBackend
from tests.e2e.scheduler.worker_processes import WorkerProcess, worker_env
from tests.support.openbao import OpenBaoServer

StartWorker = Callable[..., WorkerProcess]


@pytest.fixture
def sessions(postgres_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(postgres_url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def backend(vault: OpenBaoServer) -> Iterator[HvacBackend]:
    with HvacBackend(vault.addr, token=vault.root_token) as b:
        yield b


@pytest.fixture
def start_worker(postgres_url: str, vault: OpenBaoServer, tmp_path: Path) -> Iterator[StartWorker]:
    """Start `transom worker` processes on the test's database; any still running at the end are killed."""
    started: list[WorkerProcess] = []

    def start(*args: str, **env: str) -> WorkerProcess:
        log_path = tmp_path / f"worker-{len(started)}.log"
        worker = WorkerProcess(worker_env(postgres_url, vault, **env), log_path, *args)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        if worker.process.poll() is None:
            worker.kill()
