"""A second `transom dev` on the same instance directory refuses to start (it would share transom.db, re-seed
the demo under the first broker and repoint its issuer); a crashed one leaves no lock behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from app.devserver.instance_lock import InstanceLock
from app.settings import PROJECT_ROOT
from tests.support.processes import free_port

TRANSOM = [sys.executable, "-c", "from app.cli import main; main(prog_name='transom')"]
HOLD = (
    "from pathlib import Path; import sys, time; from app.devserver.instance_lock import InstanceLock; "
    "InstanceLock(Path(sys.argv[1])).acquire(8080); print('held', flush=True); time.sleep(60)"
)


def _dev(instance: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRANSOM_")}
    return subprocess.run(
        [*TRANSOM, "dev", "--port", str(free_port())],
        env={**env, "TRANSOM_INSTANCE_DIR": str(instance)},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_second_dev_server_on_the_same_instance_refuses_with_who_holds_it(tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    first = InstanceLock(instance)
    first.acquire(8123)  # what a running `transom dev --port 8123` holds
    try:
        second = _dev(instance)
    finally:
        first.release()

    assert second.returncode == 1
    assert f"pid {os.getpid()}, port 8123" in second.stderr
    assert "TRANSOM_INSTANCE_DIR" in second.stderr
    assert not (instance / "transom.db").exists()  # it touched nothing of the first one's
    assert not (instance / "dev").exists()


def test_a_crashed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    with subprocess.Popen(
        [sys.executable, "-c", HOLD, str(instance)], cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True
    ) as holder:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)

    lock = InstanceLock(instance)
    lock.acquire(8080)  # the file is still there; the lock died with its process
    lock.release()
