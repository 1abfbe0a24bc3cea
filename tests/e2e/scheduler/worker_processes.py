"""`transom worker` as a real process: started with the deployer's environment, stopped or killed by PID."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO

from tests.support.openbao import OpenBaoServer
from tests.support.processes import transom_env

PROJECT_ROOT = Path(__file__).resolve().parents[3]
TRANSOM = [sys.executable, "-m", "app.cli"]


def worker_env(database_url: str, vault: OpenBaoServer, **extra: str) -> dict[str, str]:
    """The environment of a worker (INFO logs, which the tests read); ``extra``: whole variable names."""
    return {**transom_env(database_url, vault, log_level="INFO"), **extra}


class WorkerProcess:
    """One `transom worker`; its log (stderr) goes to a file the test reads."""

    def __init__(self, env: Mapping[str, str], log_path: Path, *args: str) -> None:
        self.log_path = log_path
        self._log: IO[bytes] = open(log_path, "ab")  # noqa: SIM115 - closed in stop()/kill()
        self.process = subprocess.Popen(
            [*TRANSOM, "worker", *args],
            env=dict(env),
            cwd=PROJECT_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log():
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited ({self.process.returncode}):\n{self.log()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"worker did not log {text!r} within {timeout}s:\n{self.log()}")
            time.sleep(0.02)

    def kill(self) -> None:
        """SIGKILL: no cleanup of any kind, as when the machine dies."""
        if self.process.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self._log.close()

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM and wait: the batch in flight settles, then the worker exits."""
        if self.process.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
        try:
            code = self.process.wait(timeout=timeout)
        finally:
            if self.process.poll() is None:
                os.kill(self.pid, signal.SIGKILL)
                self.process.wait()
            self._log.close()
        return code

    def errors(self) -> list[str]:
        markers = (" ERROR ", '"level": "ERROR"', '"level": "CRITICAL"', "Traceback")  # text or JSON lines
        return [line for line in self.log().splitlines() if any(marker in line for marker in markers)]


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True
