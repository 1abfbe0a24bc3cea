from __future__ import annotations

from marshmallow import Schema, fields, validate

from app.schemas import Duration, Instant, Name, StrictSchema
from app.tokens.service import ROLES


class TokenRequestSchema(StrictSchema):
    name = Name(required=True)
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    ttl = Duration(load_default=None)


class TokenSchema(Schema):
    name = fields.String()
    role = fields.String()
    created_at = Instant()
    expires_at = Instant(allow_none=True)
    last_used_at = Instant(allow_none=True)


class NewTokenSchema(TokenSchema):
    token = fields.String()


class TokenPageSchema(Schema):
    items = fields.List(fields.Nested(TokenSchema))
    next_cursor = fields.String(allow_none=True)
