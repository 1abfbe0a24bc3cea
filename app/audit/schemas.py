"""The audit API's query arguments and response shapes."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from app.schemas import Instant, PageQuerySchema

# One reason of a denial, as the lease API answers it (docs/API.md, "Leases").
REASON_DOC = {
    "type": "object",
    "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
    "required": ["code", "message"],
}

FORMATS = ("json", "csv", "jsonl")


class AuditQuerySchema(PageQuerySchema):
    action = fields.String(validate=validate.Length(1, 64))
    lease_id = fields.String(validate=validate.Length(1, 40))
    policy = fields.String(validate=validate.Length(1, 63))
    secret = fields.String(validate=validate.Length(1, 63))
    repository = fields.String(validate=validate.Length(1, 255))
    branch = fields.String(validate=validate.Length(1, 255))
    ref = fields.String(validate=validate.Length(1, 255))
    actor = fields.String(validate=validate.Length(1, 512), metadata={"description": "the actor's id"})
    pipeline_id = fields.String(
        validate=validate.Length(1, 255),
        metadata={"description": "events whose details.identity.pipeline_id is this (denials, grants)"},
    )
    decision = fields.String(validate=validate.OneOf(("allow", "deny")))
    after = Instant(metadata={"description": "events at or after this instant"})
    before = Instant(metadata={"description": "events strictly before this instant"})
    format = fields.String(load_default="json", validate=validate.OneOf(FORMATS))


class ActorSchema(Schema):
    type = fields.String()
    id = fields.String()


class AuditEventSchema(Schema):
    """An event exactly as its hash covers it (plus ``hash``), so a client can verify what it reads."""

    id = fields.Integer()
    at = fields.String()
    action = fields.String()
    actor = fields.Nested(ActorSchema)
    lease_id = fields.String(allow_none=True)
    policy = fields.String(allow_none=True)
    secret = fields.String(allow_none=True)
    repository = fields.String(allow_none=True)
    ref = fields.String(allow_none=True)
    branch = fields.String(allow_none=True)
    decision = fields.String(allow_none=True)
    reasons = fields.List(fields.Dict(metadata=REASON_DOC))
    details = fields.Dict(metadata={"description": "What the action recorded; varies by action"})
    prev_hash = fields.String()
    hash = fields.String()


class AuditEventPageSchema(Schema):
    items = fields.List(fields.Nested(AuditEventSchema))
    next_cursor = fields.String(allow_none=True)


class VerificationSchema(Schema):
    ok = fields.Boolean()
    checked = fields.Integer()
    head = fields.String()
    first_bad_id = fields.Integer(metadata={"description": "present when ok is false"})
