from __future__ import annotations

from marshmallow import Schema, fields, validate

from app.schemas import Duration, Instant, Name, StrictSchema
from app.tokens.service import ROLES


class TokenRequestSchema(StrictSchema):
    name = Name(required=True)
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    # Missing: 90 days; at most TRANSOM_TOKEN_MAX_TTL (365 days by default), else 400.
    ttl = Duration(load_default=None, metadata={"description": "Lifetime; default 90 days"})
    # The person's login on the CI platform (GitHub actor, GitLab user_login): never approves its own runs.
    ci_login = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 255))


class TokenSchema(Schema):
    name = fields.String()
    role = fields.String()
    ci_login = fields.String(allow_none=True)
    created_at = Instant()
    expires_at = Instant(allow_none=True)
    last_used_at = Instant(allow_none=True)


class NewTokenSchema(TokenSchema):
    token = fields.String()


class TokenPageSchema(Schema):
    items = fields.List(fields.Nested(TokenSchema))
    next_cursor = fields.String(allow_none=True)
