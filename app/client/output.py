"""How ``transom lease request`` hands values to the next step: env, dotenv, json or github-env.

On GitHub Actions every value is masked first (``::add-mask::``), one line at a time and in the form the
chosen format writes it (JSON and dotenv escape characters), before any value is printed or written.
The runner reads workflow commands on stdout and stderr alike (actions/runner, ScriptHandler's two
OutputManagers), so the masks go to whichever stream does not carry the values.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from app.client.broker import LeaseView
from app.client.errors import UsageError

FORMATS = ("env", "dotenv", "json", "github-env")
LEASE_IDS_VARIABLE = "TRANSOM_LEASE_IDS"
_DOTENV_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def on_github_actions(environ: Mapping[str, str]) -> bool:
    return environ.get("GITHUB_ACTIONS") == "true"


def _command_data(text: str) -> str:
    """GitHub's workflow-command escaping (what @actions/core does), so the runner masks the exact text."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def mask_commands(values: Iterable[str], fmt: str | None = None) -> list[str]:
    """``::add-mask::`` lines for each line of each value (and of its escaped form in ``fmt``)."""
    commands: list[str] = []
    seen: set[str] = set()
    for value in values:
        forms = [value]
        if fmt == "json":
            forms.append(json.dumps(value, ensure_ascii=False)[1:-1])
        elif fmt == "dotenv":
            forms.append(dotenv_escape(value))
        for form in forms:
            for line in form.splitlines():
                if line.strip() and line not in seen:
                    seen.add(line)
                    commands.append(f"::add-mask::{_command_data(line)}")
    return commands


def lease_ids(existing: str | None, leases: Sequence[LeaseView]) -> str:
    """``TRANSOM_LEASE_IDS`` after these leases: earlier steps' ids first, so one release ends them all."""
    ids = (existing or "").split()
    ids += [lease.id for lease in leases if lease.id not in ids]
    return " ".join(ids)


def shell_quote(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


def dotenv_escape(value: str) -> str:
    return "".join(_DOTENV_ESCAPES.get(char, char) for char in value)


def render_env(variables: Mapping[str, str]) -> str:
    """``export NAME='value'`` lines for ``eval "$(transom lease request ...)"`` in a POSIX shell."""
    return "".join(f"export {name}={shell_quote(value)}\n" for name, value in variables.items())


def render_dotenv(variables: Mapping[str, str]) -> str:
    """``NAME="value"`` lines with backslash escapes (python-dotenv, docker compose)."""
    return "".join(f'{name}="{dotenv_escape(value)}"\n' for name, value in variables.items())


def render_json(leases: Sequence[LeaseView], variables: Mapping[str, str]) -> str:
    document: dict[str, Any] = {"leases": [lease.raw for lease in leases], "env": dict(variables)}
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def github_env_block(name: str, value: str) -> str:
    """GitHub's multiline-safe ``NAME<<DELIMITER`` form; the random delimiter never occurs in the value."""
    while True:
        delimiter = f"ghadelimiter_{secrets.token_hex(16)}"
        if delimiter not in value:
            return f"{name}<<{delimiter}\n{value}\n{delimiter}\n"


def append_github_env(environ: Mapping[str, str], variables: Mapping[str, str]) -> Path:
    target = environ.get("GITHUB_ENV")
    if not target:
        raise UsageError("--format github-env needs $GITHUB_ENV (set by GitHub Actions in every step)")
    path = Path(target)
    try:
        with path.open("a", encoding="utf-8") as sink:
            sink.write("".join(github_env_block(name, value) for name, value in variables.items()))
    except OSError as exc:
        raise UsageError(f"cannot append to $GITHUB_ENV ({path}): {exc.strerror}") from None
    return path
