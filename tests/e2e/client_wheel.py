"""The project's wheel, built from this checkout into a temporary directory (the checkout gets no build
files), and fresh venvs to install it in: what a CI job does with `pip install <transom>`."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

from app.settings import PROJECT_ROOT


def outside_env() -> dict[str, str]:
    """This process's environment without what would lead a fresh venv back to the checkout or the shared
    venv."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}


def build_wheel(into: Path) -> Path:
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(into), str(PROJECT_ROOT)],
        env=outside_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = into.glob("transom-*.whl")
    return wheel


def fresh_venv(where: Path) -> Path:
    """A new venv with pip and nothing else; returns its bin directory."""
    venv.EnvBuilder(with_pip=True, clear=True).create(where)
    return where / "bin"
