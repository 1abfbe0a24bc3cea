"""`transom dev`: OpenBao in dev mode, SQLite under ``instance/``, the demo issuer, the embedded scheduler
and the API on 127.0.0.1, all in one process tree that Ctrl-C (or SIGTERM) takes down entirely.

The API is served by werkzeug's threaded server inside this process rather than by gunicorn: the embedded
scheduler and the demo issuer must live in exactly one process with the app, and gunicorn's arbiter would
fork workers (each would run every job) and own the signals that this process needs to stop OpenBao after the
broker. Production serving stays `transom serve` (gunicorn).

Stopping goes in reverse order of starting: the HTTP server, the scheduler (its sweeper ends within a second),
the database engine, the demo issuer, OpenBao last (SIGTERM, then SIGKILL), so no revocation in flight loses
its Vault.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from app import create_app
from app.clock import SystemClock
from app.devserver.demo import Demo, ensure_admin_token, seed
from app.devserver.demo_issuer import DemoIssuer
from app.devserver.instance_lock import InstanceBusy, InstanceLock
from app.devserver.openbao import DevOpenBao
from app.devserver.ports import port_is_free
from app.migrate import upgrade_database
from app.runtime import runtime_of
from app.scheduler.runner import start_embedded

log = logging.getLogger(__name__)

HOST = "127.0.0.1"

WATCH_INTERVAL = 1.0  # seconds between checks that OpenBao is still alive


class DevError(RuntimeError):
    pass


class _Interrupted(BaseException):
    """A stop signal arrived while starting: unwind, stopping what already started."""


@dataclass
class Started:
    """What is running, for the banner and for tests that check everything stopped."""

    url: str
    database_path: Path
    openbao: DevOpenBao
    issuer: DemoIssuer
    demo: Demo


@dataclass
class DevStack:
    instance_dir: Path
    port: int = 8080
    settings: dict[str, Any] = field(default_factory=dict)
    _stops: list[tuple[str, Callable[[], object]]] = field(default_factory=list)
    _stop_requested: threading.Event = field(default_factory=threading.Event)
    _starting: bool = True

    @property
    def dev_dir(self) -> Path:
        return self.instance_dir / "dev"

    def run(self, announce: Callable[[Started], None]) -> None:
        """Start everything, announce it, serve until SIGINT/SIGTERM, stop everything."""
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            started = self._start()
            self._starting = False
            announce(started)
            self._serve_until_stopped(started.openbao)
        except _Interrupted:
            pass
        finally:
            self._stop_all()
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stop_requested.set()
        if self._starting:
            raise _Interrupted

    def _start(self) -> Started:
        lock = InstanceLock(self.instance_dir)
        try:
            lock.acquire(self.port)
        except InstanceBusy as exc:
            raise DevError(str(exc)) from None
        self._stops.append(("instance lock", lock.release))  # released last, after everything stopped
        if not port_is_free(self.port):
            raise DevError(f"port {self.port} on {HOST} is in use: stop what holds it or pass --port")
        self.dev_dir.mkdir(parents=True, exist_ok=True)

        openbao = DevOpenBao(self.dev_dir / "openbao.log")  # first: before any thread of ours exists
        self._stops.append(("OpenBao", openbao.stop))
        openbao.start()

        issuer = DemoIssuer(self.dev_dir)
        self._stops.append(("demo issuer", issuer.stop))
        issuer.start()

        role_id, secret_id = openbao.broker_approle()
        openbao.create_ledger_key()
        database_path = self.instance_dir / "transom.db"
        database_url = f"sqlite:///{database_path}"
        upgrade_database(database_url)
        app = create_app(
            {
                "env": "development",
                "database_url": database_url,
                "vault_addr": openbao.addr,
                "vault_role_id": role_id,  # the shipped least-privilege policy, not the root token
                "vault_secret_id": secret_id,
                "scheduler": "embedded",
                "allow_insecure_issuers": True,
                **self.settings,
            }
        )
        runtime = runtime_of(app)
        self._stops.append(("database", runtime.engine.dispose))

        clock = SystemClock()
        admin_token = ensure_admin_token(runtime, self.dev_dir, clock)
        demo = seed(app, admin_token, openbao, issuer.url, clock.now())

        scheduler = start_embedded(app)
        self._stops.append(("scheduler", scheduler.shutdown))

        self._serve(app)
        return Started(f"http://{HOST}:{self.port}", database_path, openbao, issuer, demo)

    def _serve(self, app: Flask) -> None:
        try:
            server: BaseWSGIServer = make_server(HOST, self.port, app, threaded=True)
        except OSError as exc:
            raise DevError(f"cannot listen on {HOST}:{self.port} ({exc.strerror}); pass --port") from None
        thread = threading.Thread(target=server.serve_forever, name="transom-dev-http", daemon=True)

        def stop_http() -> None:
            server.shutdown()
            thread.join(timeout=10)
            server.server_close()

        thread.start()
        self._stops.append(("HTTP server", stop_http))

    def _serve_until_stopped(self, openbao: DevOpenBao) -> None:
        while not self._stop_requested.wait(WATCH_INTERVAL):
            if not openbao.running:
                log.error("OpenBao exited on its own; stopping (see %s)", openbao.log_path)
                return

    def _stop_all(self) -> None:
        while self._stops:
            name, stop = self._stops.pop()
            try:
                stop()
            except Exception:
                log.exception("stopping the %s failed", name)
