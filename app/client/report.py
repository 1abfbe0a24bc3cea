"""What the client tells the human reading the job log, on stderr; never a secret value or a token."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

from app.client.errors import ClientError, Denied

_NEXT_OPENING = re.compile(
    r"next opening is at (\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d:\d\d))"
)


def next_opening(error: Denied) -> datetime | None:
    """The earliest next window opening named by the reasons (``outside_window``, ``freeze_active``)."""
    found = []
    for reason in error.reasons:
        match = _NEXT_OPENING.search(reason.message)
        if match:
            try:
                found.append(datetime.fromisoformat(match.group(1).replace("Z", "+00:00")))
            except ValueError:
                continue
    return min(found) if found else None


def humane_delay(delta_seconds: float) -> str:
    seconds = max(0, int(delta_seconds))
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else "", f"{minutes}m" if minutes else ""]
    text = " ".join(p for p in parts if p)
    return text or f"{seconds}s"


class Reporter:
    def __init__(
        self, write: Callable[[str], None], *, quiet: bool = False, now: Callable[[], datetime] | None = None
    ) -> None:
        self._write = write
        self._quiet = quiet
        self._now = now or (lambda: datetime.now(UTC))

    def info(self, message: str) -> None:
        if not self._quiet:
            self._write(f"transom: {message}")

    def warning(self, message: str) -> None:
        self._write(f"transom: warning: {message}")

    def error(self, error: ClientError) -> None:
        self._write(f"transom: {error.message}")
        self._details(error)

    def refusal(self, error: Denied) -> None:
        """A denial's reasons and next opening, without the headline (for a warning that precedes it)."""
        self._details(error)

    def _details(self, error: ClientError) -> None:
        if isinstance(error, Denied):
            for reason in error.reasons:
                where = f" [policy {reason.policy}]" if reason.policy else ""
                self._write(f"  - {reason.code}{where}: {reason.message}")
            opening = next_opening(error)
            if opening is not None:
                wait = (opening - self._now()).total_seconds()
                shown = opening.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                self._write(f"  next window opening: {shown} (in {humane_delay(wait)})")
        for line in error.lines:
            self._write(f"  {line}")
