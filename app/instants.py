"""RFC 3339 instants on the wire: always UTC with ``Z``; fractions only when the instant has them."""

from __future__ import annotations

from datetime import UTC, datetime


def format_instant(value: datetime) -> str:
    value = value.astimezone(UTC)
    pattern = "%Y-%m-%dT%H:%M:%S.%fZ" if value.microsecond else "%Y-%m-%dT%H:%M:%SZ"
    return value.strftime(pattern)


def parse_instant(text: str) -> datetime:
    """Parse an RFC 3339 instant that states its offset; naive times are refused, not guessed."""
    parsed = datetime.fromisoformat(text.strip().replace("z", "Z"))
    if parsed.tzinfo is None:
        raise ValueError("an instant needs an offset, e.g. 2026-12-01T08:00:00Z")
    return parsed.astimezone(UTC)
