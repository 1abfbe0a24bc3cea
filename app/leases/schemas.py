from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from app.decision.approvals import MAX_JUSTIFICATION
from app.schemas import Duration, Instant, Name, PageQuerySchema, StrictSchema, WholeMatch

MIN_TTL_SECONDS = 5
APPROVAL_ID = r"^apr_[A-Za-z0-9_-]{1,60}$"
STATUSES = ("issuing", "active", "revoking", "expired", "released", "revoked", "failed")


def _at_least_min_ttl(value: Any) -> None:
    if value is not None and value.total_seconds() < MIN_TTL_SECONDS:
        raise ValidationError(f"must be at least {MIN_TTL_SECONDS} seconds")


class LeaseRequestSchema(StrictSchema):
    secret = Name(required=True)
    ttl = Duration(load_default=None, validate=_at_least_min_ttl)
    idempotency_key = fields.String(
        load_default=None,
        validate=WholeMatch(r"^[A-Za-z0-9._:@/-]{1,255}$", error="1-255 of A-Z a-z 0-9 . _ : @ / -"),
    )
    # Asks for a break-glass exception to the windows and freezes (docs/API.md, "Approvals and break-glass").
    justification = fields.String(load_default=None, validate=validate.Length(1, MAX_JUSTIFICATION))
    approval = fields.String(
        load_default=None,
        validate=WholeMatch(APPROVAL_ID, error="an approval request id, apr_..."),
        metadata={"description": "Claim this approved request's one lease"},
    )


class RenewRequestSchema(StrictSchema):
    ttl = Duration(load_default=None, validate=_at_least_min_ttl)


class RevokeRequestSchema(StrictSchema):
    reason = fields.String(load_default=None, validate=validate.Length(max=500))


class RevokeFilterSchema(StrictSchema):
    policy = Name()
    secret = Name()
    repository = fields.String(validate=validate.Length(1, 255))
    branch = fields.String(validate=validate.Length(1, 255))
    issuer = Name()


class BulkRevokeRequestSchema(StrictSchema):
    filter = fields.Nested(RevokeFilterSchema, required=True)
    reason = fields.String(load_default=None, validate=validate.Length(max=500))

    @validates_schema
    def _some_filter(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data.get("filter"):
            raise ValidationError("name at least one of policy, secret, repository, branch, issuer", "filter")


class BulkRevokeSchema(Schema):
    revoked = fields.Integer()


class LeaseSchema(Schema):
    id = fields.String()
    secret = fields.String()
    policy = fields.String()
    status = fields.String()
    issued_at = Instant()
    expires_at = Instant()
    ttl = fields.Integer(attribute="ttl_seconds")
    bounded_by = fields.String()
    renewable = fields.Function(lambda lease: lease.status == "active", metadata={"type": "boolean"})


class IssuedLeaseSchema(LeaseSchema):
    data = fields.Dict(metadata={"description": "The secret's values: kv keys, or the Vault token's fields"})


class LeaseDetailSchema(LeaseSchema):
    ended_at = Instant(allow_none=True)
    end_reason = fields.String(allow_none=True)
    identity = fields.Dict(metadata={"description": "The normalised workload identity of the token"})
    renewals = fields.Integer()
    issuer = fields.String()
    idempotency_key = fields.String(allow_none=True)
    revoke_note = fields.String(allow_none=True, data_key="note")
    source_address = fields.String(
        allow_none=True, metadata={"description": "The client address of the last issue or renewal"}
    )


class LeaseQuerySchema(PageQuerySchema):
    status = fields.String(validate=validate.OneOf(STATUSES))
    secret = fields.String(validate=validate.Length(max=63))
    policy = fields.String(validate=validate.Length(max=63))
    issuer = fields.String(validate=validate.Length(max=63))
    repository = fields.String(validate=validate.Length(max=255))
    branch = fields.String(validate=validate.Length(max=255))
    runner_id = fields.String(validate=validate.Length(max=255))
    pipeline_id = fields.String(validate=validate.Length(max=255))
    issued_after = Instant()
    issued_before = Instant()
    format = fields.String(load_default="json", validate=validate.OneOf(("json", "csv", "jsonl")))


class LeasePageSchema(Schema):
    items = fields.List(fields.Nested(LeaseDetailSchema))
    next_cursor = fields.String(allow_none=True)
