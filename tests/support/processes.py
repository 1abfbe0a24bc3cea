"""What starts `transom` processes needs, in tests and benchmarks: a free port and the process environment."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

from tests.support.openbao import OpenBaoServer

ROOT = Path(__file__).resolve().parents[2]


def proc_stats() -> Iterator[tuple[int, str, list[str]]]:
    """Every live process's ``/proc/<pid>/stat`` (Linux): its pid, its command name, and the fields after the
    name (``[0]`` state, ``[1]`` ppid, ``[2]`` process group, ``[11]``/``[12]`` user/system ticks, ``[19]``
    start time). The name may hold spaces and parentheses, so the fields are split after its last ')'."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue  # ended meanwhile
        name, _, rest = text.partition("(")[2].rpartition(")")
        yield int(entry.name), name, rest.split()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def transom_env(database_url: str, vault: OpenBaoServer, **settings: str) -> dict[str, str]:
    """This environment without any TRANSOM_* of the caller's, pointed at ``database_url`` and ``vault``;
    ``settings`` adds TRANSOM_<NAME> values (``workers="2"`` → TRANSOM_WORKERS=2)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRANSOM_")}
    env.update(
        TRANSOM_ENV="test",
        TRANSOM_DATABASE_URL=database_url,
        TRANSOM_VAULT_ADDR=vault.addr,
        TRANSOM_VAULT_TOKEN=vault.root_token,
        PYTHONPATH=str(ROOT),
    )
    env.update({f"TRANSOM_{name.upper()}": value for name, value in settings.items()})
    return env
