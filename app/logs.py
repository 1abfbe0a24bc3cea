"""Logging set-up for the broker: plain text wherever the log is not a terminal.

Werkzeug's request logger (the server of ``transom dev``) writes ANSI colour codes into the message itself, so
a log file or a log collector would get escape sequences. Each stream handler's formatter takes them out of
the line it writes unless that handler writes to a terminal (a formatter, not a filter: a filter would change
the record for every other handler too).
"""

from __future__ import annotations

import logging
import re

ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class PlainUnlessTerminal(logging.Formatter):
    """``inner``'s line, without ANSI escape sequences unless ``handler`` writes to a terminal."""

    def __init__(self, inner: logging.Formatter | None, handler: logging.StreamHandler) -> None:  # type: ignore[type-arg]
        super().__init__()
        self.inner = inner or logging.Formatter()
        self.handler = handler

    def format(self, record: logging.LogRecord) -> str:
        line = self.inner.format(record)
        isatty = getattr(self.handler.stream, "isatty", None)
        return line if callable(isatty) and isatty() else ANSI_ESCAPE.sub("", line)


def configure_logging(level: str | int) -> None:
    """``logging.basicConfig`` (a no-op when the root logger has handlers already), then no colour codes
    in anything but a terminal, on every stream handler of the root logger (werkzeug's lines reach it)."""
    logging.basicConfig(level=level)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and not isinstance(
            handler.formatter, PlainUnlessTerminal
        ):
            handler.setFormatter(PlainUnlessTerminal(handler.formatter, handler))
