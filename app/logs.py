"""Logging set-up for the broker: one line per event, as JSON or text, never a credential, no colour codes
in anything but a terminal.

``TRANSOM_LOG_FORMAT`` picks the line: ``json`` (the default under ``transom serve`` and ``transom worker``)
or ``text`` (the default under ``transom dev`` and in the app factory). Each line carries a timestamp
(RFC 3339, UTC), the level, the logger, the message and the request id of the request being served, and the
lease id, policy and workload repository when the log call passes them as ``extra``. gunicorn's access and
error logs use the same formatter (``config/gunicorn.conf.py``), werkzeug's request log under ``transom dev``
reaches the root logger's handler.

Every line is redacted before it is written: a bearer credential, a broker token (``trn_…``) or anything
shaped like a JWT becomes ``[redacted]``, whatever logged it (an exception message quoting a header, say).

Werkzeug's request logger writes ANSI colour codes into the message itself; each stream handler's formatter
takes them out unless that handler writes to a terminal (a formatter, not a filter: a filter would change the
record for every other handler too).
"""

from __future__ import annotations

import json
import logging
import re
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
FORMATS = ("json", "text")

# The request being served by this thread (set by the app factory's before_request, cleared at teardown).
request_id: ContextVar[str | None] = ContextVar("transom_request_id", default=None)

# What a log call may pass in ``extra`` for a lease; written when present.
LEASE_FIELDS = ("lease_id", "policy", "repository")

_REDACTIONS = (
    (re.compile(r"(?i)\b(bearer)\s+[^\s\"',;]+"), r"\1 [redacted]"),
    (re.compile(r"\btrn_[A-Za-z0-9_\-\.]+"), "trn_[redacted]"),
    (re.compile(r"\beyJ[A-Za-z0-9_\-]*\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*"), "[redacted-jwt]"),
    (re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?)(?:[A-Za-z]+\s+)?[^\s\"',;}]+"), r"\1[redacted]"),
)


def redact(text: str) -> str:
    """``text`` without bearer credentials, broker tokens or JWT-shaped strings."""
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


def _timestamp(record: logging.LogRecord) -> str:
    instant = datetime.fromtimestamp(record.created, UTC)
    return instant.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _context(record: logging.LogRecord) -> dict[str, Any]:
    """The request id and the lease fields of ``record``: from ``extra``, the request being served, or (for
    gunicorn's access line, written after the request) the response's X-Request-Id header."""
    found: dict[str, Any] = {}
    rid = getattr(record, "request_id", None) or request_id.get()
    if rid is None and record.name == "gunicorn.access" and isinstance(record.args, dict):
        rid = record.args.get("{x-request-id}o") or None
        if rid == "-":
            rid = None
    if rid:
        found["request_id"] = rid
    for name in LEASE_FIELDS:
        value = getattr(record, name, None)
        if value is not None:
            found[name] = value
    return found


def _is_terminal(handler: logging.Handler | None) -> bool:
    isatty = getattr(getattr(handler, "stream", None), "isatty", None)
    return bool(callable(isatty) and isatty())


class LineFormatter(logging.Formatter):
    """One line per record: a JSON object or ``<time> <LEVEL> <logger> [key=value ...] <message>``; the
    message and context redacted, and without colour codes unless ``handler`` writes to a terminal (both
    before the line is serialised, so a JSON line stays valid JSON)."""

    def __init__(self, kind: str = "text", handler: logging.Handler | None = None) -> None:
        super().__init__()
        if kind not in FORMATS:
            raise ValueError(f"log format must be one of {', '.join(FORMATS)}")
        self.kind = kind
        self.handler = handler

    def _clean(self, text: str) -> str:
        text = redact(text)
        return text if _is_terminal(self.handler) else ANSI_ESCAPE.sub("", text)

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            message = f"{message}\n{record.exc_text}"
        if record.stack_info:
            message = f"{message}\n{self.formatStack(record.stack_info)}"
        message = self._clean(message)
        context = {key: self._clean(str(value)) for key, value in _context(record).items()}
        if self.kind == "json":
            line = {
                "timestamp": _timestamp(record),
                "level": record.levelname,
                "logger": record.name,
                "message": message,
                **context,
            }
            return json.dumps(line, default=str, ensure_ascii=False)
        pairs = "".join(f" {key}={value}" for key, value in context.items())
        return f"{_timestamp(record)} {record.levelname} {record.name}{pairs} {message}"


class PlainUnlessTerminal(logging.Formatter):
    """``inner``'s line, redacted, without ANSI escape sequences unless ``handler`` writes to a terminal."""

    def __init__(self, inner: logging.Formatter | None, handler: logging.StreamHandler) -> None:  # type: ignore[type-arg]
        super().__init__()
        self.inner = inner or logging.Formatter()
        self.handler = handler

    def format(self, record: logging.LogRecord) -> str:
        line = redact(self.inner.format(record))
        return line if _is_terminal(self.handler) else ANSI_ESCAPE.sub("", line)


def use_line_format(handler: logging.Handler, kind: str) -> None:
    """Make ``handler`` write :class:`LineFormatter` lines of ``kind``: redacted, plain unless a terminal."""
    handler.setFormatter(LineFormatter(kind, handler))


def configure_logging(level: str | int, kind: str = "text") -> None:
    """``logging.basicConfig`` (a no-op when the root logger has handlers already); then the root logger's
    own stream handler (the one basicConfig adds) writes ``kind`` lines, and any other stream handler found
    there (a test runner's capture, say) keeps its format but is redacted and loses colour codes."""
    logging.basicConfig(level=level)
    for handler in logging.getLogger().handlers:
        if type(handler) is logging.StreamHandler:
            use_line_format(handler, kind)
        elif isinstance(handler, logging.StreamHandler) and not isinstance(
            handler.formatter, PlainUnlessTerminal
        ):
            handler.setFormatter(PlainUnlessTerminal(handler.formatter, handler))
