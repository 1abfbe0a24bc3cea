"""Fields and schemas shared by every feature's request and response schemas."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from app.decision.durations import parse_duration
from app.instants import format_instant, parse_instant

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
NAME_MESSAGE = "must match ^[a-z0-9][a-z0-9._-]{{0,62}}$ (lowercase letters, digits, '.', '_', '-')"


class Name(fields.String):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(validate=validate.Regexp(NAME_PATTERN, error=NAME_MESSAGE), **kwargs)


class Duration(fields.Field[timedelta]):
    """Integer seconds or ``"1h30m"`` in requests; integer seconds in responses."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> timedelta:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValidationError("must be whole seconds or a duration such as '15m' or '1h30m'")
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None

    def _serialize(self, value: timedelta | None, attr: str | None, obj: Any, **kwargs: Any) -> int | None:
        return None if value is None else int(value.total_seconds())


class Instant(fields.Field[datetime]):
    """RFC 3339 with an offset in; UTC with ``Z`` out."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        if not isinstance(value, str):
            raise ValidationError("must be an RFC 3339 time such as 2026-12-01T08:00:00Z")
        try:
            return parse_instant(value)
        except ValueError:
            raise ValidationError(
                "must be an RFC 3339 time with an offset, such as 2026-12-01T08:00:00Z"
            ) from None

    def _serialize(self, value: datetime | None, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else format_instant(value)


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


class PageQuerySchema(Schema):
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 500))
    cursor = fields.String(load_default=None, validate=validate.Length(max=512))


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int) -> list[Any]:
    """The keyset position a previous page ended at; a tampered cursor is a 400, not a crash."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise ValidationError({"cursor": ["is not a cursor this API returned"]}) from None
    if (
        not isinstance(values, list)
        or len(values) != arity
        or not all(isinstance(v, int | str) for v in values)
    ):
        raise ValidationError({"cursor": ["is not a cursor this API returned"]})
    return values


def page_of(query: dict[str, Any], fetch: Callable[[int, int | None], Sequence[Any]]) -> dict[str, Any]:
    """One keyset page of a list ordered by ``id`` descending (newest first)."""
    before = decode_cursor(query["cursor"], 1)[0] if query["cursor"] else None
    rows = fetch(query["limit"] + 1, before)
    page = rows[: query["limit"]]
    more = len(rows) > query["limit"]
    return {"items": page, "next_cursor": encode_cursor([page[-1].id]) if more and page else None}
