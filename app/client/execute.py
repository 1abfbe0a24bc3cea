"""``transom lease exec``: run a command with leased values in its environment, then release them.

The command runs in a process group of its own, and this process forwards SIGINT, SIGTERM and SIGHUP to that
group, so the command gets each signal exactly once whether it came from a terminal, a CI runner or ``kill``.
On an interactive terminal the command's group is made the foreground group for the duration (as a shell does
for a job), so it can read the terminal and Ctrl-C reaches it directly. After a forwarded signal the command
has ``grace`` seconds to finish; a second signal, or the grace running out, releases the leases at once and
kills the command's group, so a cancelled job never outlives its credentials by much.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from app.client.errors import UsageError
from app.client.leaseset import LeaseSet
from app.client.naming import EnvNaming
from app.client.output import mask_commands, on_github_actions
from app.client.report import Reporter

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
POLL_CAP = 0.5  # seconds between looks at signals, grace and renewals while the command runs
EXIT_NOT_FOUND = 127
EXIT_NOT_EXECUTABLE = 126


def exit_status(returncode: int) -> int:
    """A shell's convention: the code, or 128 + the signal that ended the process."""
    return 128 - returncode if returncode < 0 else returncode


@dataclass
class SignalLatch:
    """Remembers the signals received and passes each one on to the command's group once it exists."""

    received: list[int] = field(default_factory=list)
    first_at: float | None = None
    child_pgid: int | None = None
    _previous: dict[int, Any] = field(default_factory=dict)

    def install(self) -> None:
        for signum in FORWARDED:
            self._previous[signum] = signal.signal(signum, self._on_signal)

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.received.append(signum)
        if self.first_at is None:
            self.first_at = time.monotonic()
        self.forward(signum)

    def forward(self, signum: int) -> None:
        if self.child_pgid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.child_pgid, signum)

    @property
    def stopping(self) -> bool:
        return bool(self.received)


def resolve_command(command: Sequence[str], environ: Mapping[str, str]) -> str | None:
    """The program that would run, or None; checked before any lease is taken."""
    program = command[0]
    if os.sep in program:
        return program if os.path.isfile(program) else None
    return shutil.which(program, path=environ.get("PATH", os.defpath))


@contextlib.contextmanager
def terminal_foreground(pgid: int) -> Iterator[None]:
    """Make ``pgid`` the terminal's foreground group while the command runs, when we own the terminal."""
    try:
        fd = sys.stdin.fileno()
        ours = os.isatty(fd) and os.tcgetpgrp(fd) == os.getpgrp()
    except (OSError, ValueError):
        ours = False
    if not ours:
        yield
        return
    previous = signal.signal(signal.SIGTTOU, signal.SIG_IGN)  # a background group may take it back
    try:
        with contextlib.suppress(OSError):
            os.tcsetpgrp(fd, pgid)
            # It may have tried to read before it owned the terminal and been stopped for that.
            os.killpg(pgid, signal.SIGCONT)
        yield
    finally:
        with contextlib.suppress(OSError):
            os.tcsetpgrp(fd, os.getpgrp())
        signal.signal(signal.SIGTTOU, previous)


@dataclass
class ExecPlan:
    secrets: Sequence[str]
    command: Sequence[str]
    naming: EnvNaming
    grace: float = 10.0
    idempotency_key: str | None = None


def run_exec(
    plan: ExecPlan,
    leases: LeaseSet,
    report: Reporter,
    environ: Mapping[str, str],
    stdout: Callable[[str], None],
) -> int:
    """Obtain, run, renew, release; the command's exit status (128 + N when a signal N ended it)."""
    if resolve_command(plan.command, environ) is None:
        report.warning(f"command not found: {plan.command[0]}; no lease was requested")
        return EXIT_NOT_FOUND
    latch = SignalLatch()
    latch.install()
    try:
        return _run(plan, leases, report, environ, stdout, latch)
    finally:
        latch.restore()


def _run(
    plan: ExecPlan,
    leases: LeaseSet,
    report: Reporter,
    environ: Mapping[str, str],
    stdout: Callable[[str], None],
    latch: SignalLatch,
) -> int:
    try:
        complete = leases.acquire(
            plan.secrets, idempotency_key=plan.idempotency_key, stop=lambda: latch.stopping
        )
        variables = plan.naming.environment(leases.leases, environ) if complete else {}
    except BaseException:
        leases.release_all()
        raise
    if on_github_actions(environ) and complete:
        for line in mask_commands(variables.values()):
            stdout(line)
    if not complete or latch.stopping:  # stopped before the command could start
        leases.release_all()
        return 128 + latch.received[0]
    try:
        child = subprocess.Popen(  # noqa: S603 - the job's own command, as given, without a shell
            list(plan.command), env={**environ, **variables}, process_group=0
        )
    except OSError as exc:
        report.warning(f"cannot run {plan.command[0]}: {exc.strerror}")
        leases.release_all()
        return EXIT_NOT_EXECUTABLE if not isinstance(exc, FileNotFoundError) else EXIT_NOT_FOUND
    latch.child_pgid = child.pid
    for signum in latch.received:  # arrived between the last lease and the start
        latch.forward(signum)
    leases.plan_renewals()
    with terminal_foreground(child.pid):
        returncode = _supervise(child, leases, report, plan.grace, latch)
    latch.child_pgid = None
    leases.release_all()
    return exit_status(returncode)


def _supervise(
    child: subprocess.Popen[bytes], leases: LeaseSet, report: Reporter, grace: float, latch: SignalLatch
) -> int:
    while True:
        due = leases.next_renewal()
        wait = POLL_CAP if due is None else min(POLL_CAP, max(0.0, due - time.monotonic()))
        try:
            return child.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            pass
        if latch.stopping and (len(latch.received) > 1 or _grace_over(latch, grace)):
            report.warning("the command did not stop in time: releasing the leases and killing it")
            leases.release_all()
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            return -latch.received[0]
        if not latch.stopping:
            leases.renew_due()


def _grace_over(latch: SignalLatch, grace: float) -> bool:
    return latch.first_at is not None and time.monotonic() - latch.first_at >= grace


def check_command(command: Sequence[str]) -> None:
    if not command:
        raise UsageError("no command to run: transom lease exec --secret NAME -- COMMAND [ARGS...]")
