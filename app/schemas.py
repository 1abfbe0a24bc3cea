"""Fields and schemas shared by every feature's request and response schemas."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, pre_load, validate

from app.decision.durations import parse_duration
from app.errors import PROBLEM_JSON
from app.instants import format_instant, parse_instant

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
NAME_MESSAGE = "must match ^[a-z0-9][a-z0-9._-]{{0,62}}$ (lowercase letters, digits, '.', '_', '-')"


class WholeMatch(validate.Regexp):
    """A pattern the whole value must match. marshmallow's ``Regexp`` uses ``re.match``, where ``$`` also
    matches before a final newline, so ``"deploys\n"`` passed ``^...$``. The pattern keeps its ``^...$`` form
    for the OpenAPI document, which JSON Schema reads without that quirk."""

    def __call__(self, value):  # type: ignore[no-untyped-def]  # marshmallow declares str and bytes overloads
        if self.regex.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value


class Name(fields.String):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(validate=WholeMatch(NAME_PATTERN, error=NAME_MESSAGE), **kwargs)


# How the OpenAPI document describes the two custom fields below (apispec reads a field's metadata).
DURATION_DOC: dict[str, Any] = {
    "oneOf": [
        {"type": "integer", "minimum": 0},
        {"type": "string", "pattern": "^(?=.)([0-9]{1,12}d)?([0-9]{1,12}h)?([0-9]{1,12}m)?([0-9]{1,12}s)?$"},
    ],
    "description": "Whole seconds, or d, h, m, s parts in that order: 90s, 15m, 1h30m, 90d",
}
INSTANT_DOC: dict[str, Any] = {"type": "string", "format": "date-time"}
EARLIEST_INSTANT = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_INSTANT = datetime(9000, 1, 1, tzinfo=UTC)


class Duration(fields.Field[timedelta]):
    """Integer seconds or ``"1h30m"`` in requests; integer seconds in responses."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(metadata={**DURATION_DOC, **kwargs.pop("metadata", {})}, **kwargs)
        if self.allow_none:  # apispec marks only a "type" nullable
            self.metadata = {**self.metadata, "oneOf": [*DURATION_DOC["oneOf"], {"type": "null"}]}

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

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(metadata={**INSTANT_DOC, **kwargs.pop("metadata", {})}, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        if not isinstance(value, str):
            raise ValidationError("must be an RFC 3339 time such as 2026-12-01T08:00:00Z")
        try:
            instant = parse_instant(value)
        except ValueError:
            raise ValidationError(
                "must be an RFC 3339 time with an offset, such as 2026-12-01T08:00:00Z"
            ) from None
        if not EARLIEST_INSTANT <= instant < LATEST_INSTANT:
            # Far from datetime's own limits, so no window, calendar or TTL arithmetic can overflow.
            raise ValidationError("must lie between 1970-01-01T00:00:00Z and 9000-01-01T00:00:00Z")
        return instant

    def _serialize(self, value: datetime | None, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else format_instant(value)


def refuse_nul(data: Any) -> None:
    """No NUL character anywhere in the input: PostgreSQL text cannot hold one (storing or even comparing it
    fails), so it is refused up front, on every database alike, naming the field it is in."""
    if not isinstance(data, Mapping):
        return
    for key in data:
        if _holds_nul(key) or _holds_nul(data[key]):
            raise ValidationError({str(key).replace("\x00", ""): ["must not contain a NUL character"]})


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, Mapping):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_holds_nul(item) for item in value)
    return False


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE

    @pre_load
    def _refuse_nul(self, data: Any, **kwargs: Any) -> Any:
        refuse_nul(data)
        return data


class PageQuerySchema(Schema):
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 500))
    cursor = fields.String(load_default=None, validate=validate.Length(max=512))

    @pre_load
    def _refuse_nul(self, data: Any, **kwargs: Any) -> Any:
        refuse_nul(data)  # the filters of a streamed export reach the database only after the 200 is sent
        return data


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, separators=(",", ":")).encode()).decode().rstrip("=")


# Keyset values a database column can hold: a signed 64-bit id (SQLite's INTEGER, PostgreSQL's BIGINT).
_MIN_ID, _MAX_ID = -(2**63), 2**63 - 1


def _bad_cursor() -> ValidationError:
    return ValidationError({"cursor": ["is not a cursor this API returned"]})


def _storable(value: Any) -> bool:
    """A cursor value the database can compare: an in-range integer (not a bool), or a string without NUL
    or lone surrogates (neither PostgreSQL nor the drivers take those)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return _MIN_ID <= value <= _MAX_ID
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return "\x00" not in value
    return False


def decode_cursor(cursor: str, arity: int) -> list[Any]:
    """The keyset position a previous page ended at; a tampered or out-of-range cursor is a 400, never a
    crash of the database driver (docs/API.md, "Conventions")."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeError, RecursionError):
        raise _bad_cursor() from None
    if not isinstance(values, list) or len(values) != arity or not all(_storable(v) for v in values):
        raise _bad_cursor()
    return values


def decode_id_cursor(cursor: str) -> int:
    """The ``id`` a page of a list ordered by ``id`` ended at."""
    value = decode_cursor(cursor, 1)[0]
    if type(value) is not int:
        raise _bad_cursor()
    return value


def page_of(query: dict[str, Any], fetch: Callable[[int, int | None], Sequence[Any]]) -> dict[str, Any]:
    """One keyset page of a list ordered by ``id`` descending (newest first)."""
    before = decode_id_cursor(query["cursor"]) if query["cursor"] else None
    rows = fetch(query["limit"] + 1, before)
    page = rows[: query["limit"]]
    more = len(rows) > query["limit"]
    return {"items": page, "next_cursor": encode_cursor([page[-1].id]) if more and page else None}


# --- error answers in the OpenAPI document ---------------------------------------------------------------

PROBLEM_MEANINGS = {
    400: "Invalid input; the offending fields are in `errors`",
    401: "Missing or invalid credential; a refused CI token names its reason in `reasons`",
    403: "A valid credential that may not do this; a policy denial names every reason in `reasons`",
    404: "No such object",
    409: "Conflict: a duplicate name, an object in use, or a lease that has already ended",
    413: "The request body is larger than the limit (64 KiB by default)",
    415: "The request body is not JSON",
    429: "Too many failed authentications from this address; retry after `Retry-After` seconds",
    502: "Vault refused the request (usually a misconfigured secret); nothing was granted",
    503: "A dependency (database, Vault, an issuer's keys) is unavailable; retry after `Retry-After`",
}


class ProblemReasonSchema(Schema):
    code = fields.String(required=True)
    message = fields.String(required=True)
    policy = fields.String()


class ProblemSchema(Schema):
    """RFC 9457 problem details: the body of every error answer (``application/problem+json``)."""

    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String(required=True)
    reasons = fields.List(fields.Nested(ProblemReasonSchema))
    errors = fields.Dict()
    request_id = fields.String()
    lease_id = fields.String()
    lease_status = fields.String()


# A streamed export (``format=csv`` or ``jsonl``): text, documented by its media type.
EXPORT_SCHEMA: dict[str, Any] = {"type": "string"}


def problem_responses(blueprint: Any, *statuses: int) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Document the problem+json answers a view can give, one ``alt_response`` per status."""

    # A route that can refuse a credential (401) can also hold back a client that keeps failing (429).
    documented = (*statuses, 429) if 401 in statuses and 429 not in statuses else statuses

    def document(view: Callable[..., Any]) -> Callable[..., Any]:
        for status in documented:
            view = blueprint.alt_response(
                status, schema=ProblemSchema, content_type=PROBLEM_JSON, description=PROBLEM_MEANINGS[status]
            )(view)
        return view

    return document
