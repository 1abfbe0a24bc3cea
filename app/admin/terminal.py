"""Where the admin commands draw with rich: standard output, wide when it is not a terminal."""

from __future__ import annotations

from rich.console import Console

PIPE_WIDTH = 200  # a pipe or file has no width; rich would assume 80 and squeeze the columns


def console() -> Console:
    """A console on standard output (looked up when printing, so click's test runner captures it)."""
    return Console(width=None if Console().is_terminal else PIPE_WIDTH, highlight=False)
