"""How denial messages show values: identity values escaped and shortened, lists, durations, instants.

Identity values come from tokens, so a crafted claim must not be able to forge lines in a log or a page:
:func:`show` escapes non-printable characters and cuts long values.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

SHOW_LIMIT = 120


def escape(value: str) -> str:
    """``value`` for a message: non-printable characters escaped, long values shortened."""
    shown = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in value[:SHOW_LIMIT])
    return f"{shown}…" if len(value) > SHOW_LIMIT else shown


def show(value: str) -> str:
    return f"'{escape(value)}'"


def duration(length: timedelta) -> str:
    """``1h30m``, the duration notation of docs/API.md."""
    seconds = int(length.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def listing(values: Sequence[str]) -> str:
    return ", ".join(values)
