"""RFC 3339 instants on the wire: always UTC with ``Z``; fractions only when the instant has them."""

from __future__ import annotations

from datetime import UTC, datetime


def format_instant(value: datetime) -> str:
    value = value.astimezone(UTC).replace(tzinfo=None)
    # isoformat, not strftime: "%Y" writes the year 123 as "123", which is not RFC 3339.
    return value.isoformat(timespec="microseconds" if value.microsecond else "seconds") + "Z"


def parse_instant(text: str) -> datetime:
    """Parse an RFC 3339 instant that states its offset; naive times are refused, not guessed."""
    parsed = datetime.fromisoformat(text.strip().replace("z", "Z"))
    if parsed.tzinfo is None:
        raise ValueError("an instant needs an offset, e.g. 2026-12-01T08:00:00Z")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+14:00 is in the year 0 in UTC
        raise ValueError("the instant lies outside the years 1 to 9999 in UTC") from None
