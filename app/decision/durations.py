"""Durations as the API writes them: integer seconds, or ``d``/``h``/``m``/``s`` parts in that order.

A string must carry units: ``"90"`` is refused (send the integer ``90``), so a value never changes meaning
with its JSON type. Parts are lower-case, each at most once, in the order ``d h m s``, with no whitespace or
sign.
Zero (``0``, ``"0s"``) is a well-formed duration; minimums such as a lease's 5 s belong to the caller.
"""

from __future__ import annotations

import re
from datetime import timedelta

# "Absurdly large": beyond ten 365-day years no duration in Transom means anything.
MAX_DURATION = timedelta(days=3650)
_MAX_SECONDS = int(MAX_DURATION.total_seconds())

_DURATION_RE = re.compile(
    r"(?:(?P<d>[0-9]{1,12})d)?(?:(?P<h>[0-9]{1,12})h)?(?:(?P<m>[0-9]{1,12})m)?(?:(?P<s>[0-9]{1,12})s)?"
)
_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_EXAMPLES = '"90s", "15m", "1h30m", "90d"'


def parse_duration(value: int | str) -> timedelta:
    """An API duration as a ``timedelta``; ``ValueError`` saying what is wrong otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"a duration is integer seconds or a string such as {_EXAMPLES}")
    seconds = value if isinstance(value, int) else _string_seconds(value)
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    if seconds > _MAX_SECONDS:
        raise ValueError(f"a duration can be at most {_MAX_SECONDS} seconds (10 years)")
    return timedelta(seconds=seconds)


def format_seconds(td: timedelta) -> int:
    """Whole seconds for a response, rounded down so a length is never overstated."""
    return td // timedelta(seconds=1)


def _string_seconds(value: str) -> int:
    match = _DURATION_RE.fullmatch(value)
    if not value or match is None:
        raise ValueError(
            f"invalid duration {value[:40]!r}: use integer seconds or d, h, m, s parts in that order, "
            f"such as {_EXAMPLES}"
        )
    return sum(int(amount) * _UNIT_SECONDS[unit] for unit, amount in match.groupdict().items() if amount)
