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
    """An event as its leaf covers it, plus its place in the log, so a client can verify what it reads."""

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
    index = fields.Integer(
        allow_none=True, metadata={"description": "its position in the log (0-based); null until integrated"}
    )
    leaf_hash = fields.String(
        allow_none=True, metadata={"description": "base64 SHA-256(0x00 ‖ leaf); null until integrated"}
    )


class AuditEventPageSchema(Schema):
    items = fields.List(fields.Nested(AuditEventSchema))
    next_cursor = fields.String(allow_none=True)


class VerificationSchema(Schema):
    ok = fields.Boolean()
    size = fields.Integer(metadata={"description": "the size of the latest checkpoint"})
    root_hash = fields.String(metadata={"description": "its root (base64)"})
    checked = fields.Integer(metadata={"description": "leaves recomputed from their events"})
    pending = fields.Integer(metadata={"description": "events committed and not yet integrated"})
    first_bad_index = fields.Integer(
        allow_none=True,
        metadata={
            "description": "when ok is false: the first leaf whose event no longer hashes to it, or null"
        },
    )
    reason = fields.String(metadata={"description": "when ok is false: what failed"})


# Positions and sizes of the log: non-negative 64-bit integers.
_POSITION = validate.Range(0, 2**63 - 1)


class CheckpointQuerySchema(Schema):
    size = fields.Integer(validate=_POSITION, metadata={"description": "a published checkpoint's size"})


class CheckpointSchema(Schema):
    size = fields.Integer()
    root_hash = fields.String()
    at = fields.String(metadata={"description": "when it was published"})


class CheckpointPageSchema(Schema):
    items = fields.List(fields.Nested(CheckpointSchema))
    next_cursor = fields.String(allow_none=True)


class KeySchema(Schema):
    origin = fields.String()
    algorithm = fields.String()
    public_key = fields.String(metadata={"description": "base64 of the 32-byte Ed25519 public key"})
    verifier_key = fields.String(
        metadata={"description": "the note verifier key (golang.org/x/mod/sumdb/note)"}
    )


class InclusionQuerySchema(Schema):
    index = fields.Integer(validate=_POSITION)
    size = fields.Integer(validate=_POSITION, metadata={"description": "default: the latest checkpoint's"})
    event = fields.Integer(validate=_POSITION, metadata={"description": "an event id instead of an index"})


class InclusionProofSchema(Schema):
    index = fields.Integer()
    size = fields.Integer()
    leaf_hash = fields.String()
    hashes = fields.List(
        fields.String(), metadata={"description": "the audit path, from the leaf's level up"}
    )


class ConsistencyQuerySchema(Schema):
    from_ = fields.Integer(required=True, data_key="from", validate=_POSITION)
    to = fields.Integer(required=True, validate=_POSITION)


class ConsistencyProofSchema(Schema):
    from_ = fields.Integer(data_key="from", attribute="from")  # the service answers {"from": ...}
    to = fields.Integer()
    hashes = fields.List(fields.String())
