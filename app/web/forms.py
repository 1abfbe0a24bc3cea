"""What the pages read from query strings and forms: empty fields mean "no filter", times are UTC."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, pre_load, validate

from app.leases.schemas import STATUSES
from app.schemas import Name

TEXT = validate.Length(max=255)


class PageInstant(fields.Field[datetime]):
    """``YYYY-MM-DD HH:MM[:SS]`` (read as UTC; a ``T`` may stand for the space) or an RFC 3339 instant."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        try:
            parsed = datetime.fromisoformat(str(value).strip().replace("z", "Z"))
        except ValueError:
            raise ValidationError("must be a UTC time such as 2026-12-01 08:00") from None
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


class FilterForm(Schema):
    class Meta:
        unknown = EXCLUDE

    @pre_load
    def _drop_empty(self, data: Mapping[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {k: v.strip() for k, v in data.items() if isinstance(v, str) and v.strip()}


class LeaseFilterForm(FilterForm):
    status = fields.String(validate=validate.OneOf(STATUSES))
    secret = fields.String(validate=TEXT)
    policy = fields.String(validate=TEXT)
    issuer = fields.String(validate=TEXT)
    repository = fields.String(validate=TEXT)
    branch = fields.String(validate=TEXT)
    runner_id = fields.String(validate=TEXT)
    pipeline_id = fields.String(validate=TEXT)
    issued_after = PageInstant()
    issued_before = PageInstant()
    cursor = fields.String(validate=validate.Length(max=512))


class EventFilterForm(FilterForm):
    action = fields.String(validate=validate.Length(max=64))
    lease_id = fields.String(validate=validate.Length(max=40))
    policy = fields.String(validate=TEXT)
    secret = fields.String(validate=TEXT)
    repository = fields.String(validate=TEXT)
    branch = fields.String(validate=TEXT)
    actor = fields.String(validate=validate.Length(max=512))
    pipeline_id = fields.String(validate=TEXT)
    after = PageInstant()
    before = PageInstant()
    cursor = fields.String(validate=validate.Length(max=512))


class DenialsForm(FilterForm):
    after = PageInstant()
    before = PageInstant()


class CalendarForm(FilterForm):
    start = fields.Date()
    days = fields.Integer(load_default=8, validate=validate.Range(1, 14))  # today and the next seven
    policy = fields.String(validate=validate.Length(max=63))


class RevokeForm(FilterForm):
    reason = fields.String(load_default=None, validate=validate.Length(max=500))


class BulkRevokeForm(FilterForm):
    policy = Name()
    secret = Name()
    repository = fields.String(validate=validate.Length(1, 255))
    branch = fields.String(validate=validate.Length(1, 255))
    issuer = Name()
    reason = fields.String(load_default=None, validate=validate.Length(max=500))


BULK_FILTERS = ("policy", "secret", "repository", "branch", "issuer")


def without(values: Mapping[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k not in names}


def as_query(values: Mapping[str, Any]) -> dict[str, str]:
    """Loaded filter values back as query-string values (for links that keep the filters)."""
    shown: dict[str, str] = {}
    for key, value in values.items():
        if isinstance(value, datetime):
            pattern = "%Y-%m-%dT%H:%M:%S" if value.second else "%Y-%m-%dT%H:%M"
            shown[key] = value.astimezone(UTC).strftime(pattern)
        elif isinstance(value, date):
            shown[key] = value.isoformat()
        elif value is not None:
            shown[key] = str(value)
    return shown
