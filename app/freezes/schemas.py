from __future__ import annotations

from marshmallow import Schema, fields, validate

from app.schemas import Instant, Name, StrictSchema
from app.windows.schedule_doc import SCHEDULE_REQUEST_DOC, SCHEDULE_RESPONSE_DOC


class FreezeRequestSchema(StrictSchema):
    name = Name(required=True)
    timezone = fields.String(load_default="UTC", validate=validate.Length(1, 64))
    schedule = fields.Dict(required=True, metadata=SCHEDULE_REQUEST_DOC)
    policies = fields.List(Name(), load_default=list, validate=validate.Length(max=100))
    reason = fields.String(load_default="", validate=validate.Length(max=500))


class FreezeSchema(Schema):
    name = fields.String()
    timezone = fields.String()
    schedule = fields.Dict(metadata=SCHEDULE_RESPONSE_DOC)
    policies = fields.List(fields.String())
    reason = fields.String()
    created_at = Instant()
    updated_at = Instant()


class FreezePageSchema(Schema):
    items = fields.List(fields.Nested(FreezeSchema))
    next_cursor = fields.String(allow_none=True)
