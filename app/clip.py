"""Values from a token cut to fit their column, so that a long claim never stops a record from being stored.

A token may be 16 KiB (docs/API.md), and any claim in it as long as fits; the columns that copy claims for
filtering are 255 or 512 characters wide, and PostgreSQL refuses a longer value where SQLite keeps it. The
whole value is kept where there is room: an event's ``details.identity``, a lease's ``identity``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


def clip(value: str, width: int) -> str:
    """``value`` cut to ``width`` characters: what ``VARCHAR(width)`` holds. Slicing a ``str`` never splits a
    character, so the stored text is always valid UTF-8."""
    return value[:width]


class ClippedString(TypeDecorator[str]):
    """``VARCHAR(length)`` that cuts a longer value instead of failing (PostgreSQL) or keeping it (SQLite),
    so both databases store, and compare, the same text."""

    impl = String
    cache_ok = True

    def __init__(self, length: int) -> None:
        super().__init__(length)
        self.width = length

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return clip(value, self.width) if isinstance(value, str) else value
