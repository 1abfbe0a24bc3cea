"""One `transom dev` per instance directory: a second one would share ``transom.db``, re-seed the demo under
the first broker and repoint its demo issuer.

The lock is ``fcntl.flock`` on a file in the instance directory, held for the life of the process: the kernel
drops it when the process ends, however it ends, so a crashed dev server never leaves a stale lock (the file
itself may stay; only the lock on it counts).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_FILE = "transom-dev.lock"


class InstanceBusy(RuntimeError):
    pass


class InstanceLock:
    def __init__(self, instance_dir: Path) -> None:
        self.path = instance_dir / LOCK_FILE
        self._descriptor: int | None = None

    def acquire(self, port: int) -> None:
        """Take the lock, or raise :class:`InstanceBusy` naming who holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(descriptor)
            os.close(descriptor)
            raise InstanceBusy(
                f"another `transom dev` ({holder or 'its pid unknown'}) already uses {self.path.parent}: "
                "stop it first, or give this one its own state with TRANSOM_INSTANCE_DIR=DIR"
            ) from None
        os.ftruncate(descriptor, 0)
        os.write(descriptor, f"pid {os.getpid()}, port {port}\n".encode())
        self._descriptor = descriptor

    def release(self) -> None:
        if self._descriptor is not None:
            os.close(self._descriptor)  # closing drops the flock
            self._descriptor = None


def _read(descriptor: int) -> str:
    try:
        return os.pread(descriptor, 200, 0).decode("utf-8", "replace").strip()
    except OSError:
        return ""
