"""Go's ``golang.org/x/mod/sumdb`` as the outside verifier of the ledger's checkpoints and proofs.

``go_verifier()`` builds ``go_tlog_program/main.go`` once per process (GOPATH mode, offline, against Debian's
golang-golang-x-mod-dev; ``make system-deps`` installs both) and returns a ``GoVerifier`` whose ``check``
sends one request and returns the program's answer. Without Go it raises ``GoUnavailable``, saying what to
install.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

SOURCE = Path(__file__).resolve().parent / "go_tlog_program" / "main.go"
DEBIAN_GOCODE = Path("/usr/share/gocode")  # where golang-golang-x-mod-dev puts golang.org/x/mod
BUILD_TIMEOUT = 180
CHECK_TIMEOUT = 30


class GoUnavailable(RuntimeError):
    """Go, or golang.org/x/mod for it, is not installed."""


class GoVerifier:
    def __init__(self, binary: Path) -> None:
        self.binary = binary

    def check(self, request: dict[str, Any]) -> dict[str, Any]:
        """Go's verdict on `request`: ``{"ok": True, "checkpoint": {...}}`` or ``{"ok": False, "error"}``."""
        done = subprocess.run(
            [str(self.binary)],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            timeout=CHECK_TIMEOUT,
            check=False,
        )
        try:
            answer: dict[str, Any] = json.loads(done.stdout)
        except json.JSONDecodeError:
            raise RuntimeError(
                f"go_verifier exited {done.returncode} without an answer: {done.stderr}"
            ) from None
        if answer.get("ok") != (done.returncode == 0):
            raise RuntimeError(f"go_verifier exit status {done.returncode} contradicts its answer {answer}")
        return answer


_built: dict[str, GoVerifier] = {}


def go_verifier() -> GoVerifier:
    """The verifier built from the current source, building it on first use in this process."""
    source = SOURCE.read_bytes()
    digest = hashlib.sha256(source).hexdigest()
    if digest not in _built:
        _built[digest] = _build(digest)
    return _built[digest]


def go_verifier_or_skip() -> GoVerifier:
    """The verifier for a test; the test is skipped when Go cannot build it here, and fails instead under
    ``TRANSOM_REQUIRE_POSTGRES=1`` (CI, where ``make test`` installs Go)."""
    problem = go_problem()
    if problem:
        if os.environ.get("TRANSOM_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"TRANSOM_REQUIRE_POSTGRES=1 but {problem}")
        pytest.skip(problem)
    return go_verifier()


def go_problem() -> str | None:
    """Why the Go verifier cannot be built here, or None."""
    if shutil.which("go") is None:
        return "Go is not installed (Debian: golang-go; `make system-deps` installs it)"
    if not (DEBIAN_GOCODE / "src/golang.org/x/mod/sumdb/note").is_dir():
        return (
            f"golang.org/x/mod is not under {DEBIAN_GOCODE} "
            "(Debian: golang-golang-x-mod-dev; `make system-deps` installs it)"
        )
    return None


def _build(digest: str) -> GoVerifier:
    problem = go_problem()
    if problem:
        raise GoUnavailable(problem)
    workdir = Path(tempfile.mkdtemp(prefix="transom-go-verifier-"))
    atexit.register(shutil.rmtree, workdir, ignore_errors=True)
    binary = workdir / f"go_verifier-{digest[:12]}"
    env = {
        **os.environ,
        "GO111MODULE": "off",
        "GOPATH": f"{workdir / 'gopath'}{os.pathsep}{DEBIAN_GOCODE}",
        "GOCACHE": str(workdir / "cache"),
        "GOFLAGS": "",
        "GOPROXY": "off",
        "CGO_ENABLED": "0",
    }
    done = subprocess.run(
        ["go", "build", "-o", str(binary), str(SOURCE)],
        cwd=SOURCE.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"building {SOURCE} failed:\n{done.stderr}")
    return GoVerifier(binary)
