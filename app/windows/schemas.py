from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from app.schemas import Instant, Name, StrictSchema
from app.windows.schedule_doc import SCHEDULE_REQUEST_DOC, SCHEDULE_RESPONSE_DOC

MAX_OCCURRENCE_RANGE_DAYS = 366
MAX_OCCURRENCES = 1000


class WindowRequestSchema(StrictSchema):
    name = Name(required=True)
    timezone = fields.String(load_default="UTC", validate=validate.Length(1, 64))
    # Validated by the calendar core, which names the bad field.
    schedule = fields.Dict(required=True, metadata=SCHEDULE_REQUEST_DOC)


class WindowSchema(Schema):
    name = fields.String()
    timezone = fields.String()
    schedule = fields.Dict(metadata=SCHEDULE_RESPONSE_DOC)
    builtin = fields.Boolean(dump_default=False)
    created_at = Instant(allow_none=True)
    updated_at = Instant(allow_none=True)


class WindowPageSchema(Schema):
    items = fields.List(fields.Nested(WindowSchema))
    next_cursor = fields.String(allow_none=True)


class RangeQuerySchema(Schema):
    from_ = Instant(required=True, data_key="from")
    to = Instant(required=True)

    @validates_schema
    def _bounded(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "from_" not in data or "to" not in data:
            return
        if data["to"] <= data["from_"]:
            raise ValidationError("must be after from", "to")
        if (data["to"] - data["from_"]).days > MAX_OCCURRENCE_RANGE_DAYS or (
            (data["to"] - data["from_"]).days == MAX_OCCURRENCE_RANGE_DAYS
            and (data["to"] - data["from_"]).seconds
        ):
            raise ValidationError(f"the range may span at most {MAX_OCCURRENCE_RANGE_DAYS} days", "to")


class IntervalSchema(Schema):
    start = Instant()
    end = Instant(allow_none=True)


class OccurrencesSchema(Schema):
    items = fields.List(fields.Nested(IntervalSchema))
    truncated = fields.Boolean()


class CalendarQuerySchema(Schema):
    from_ = Instant(load_default=None, data_key="from")
    days = fields.Integer(load_default=7, validate=validate.Range(1, 31))
    policy = Name(load_default=None)


class PolicyWeekSchema(Schema):
    policy = fields.String()
    windows = fields.List(fields.Nested(IntervalSchema))
    freezes = fields.List(fields.Nested(IntervalSchema))
    open = fields.List(fields.Nested(IntervalSchema))


class CalendarSchema(Schema):
    start = Instant()
    end = Instant()
    policies = fields.List(fields.Nested(PolicyWeekSchema))
