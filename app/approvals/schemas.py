from __future__ import annotations

from marshmallow import Schema, fields, validate

from app.approvals.models import ApprovalStatus
from app.schemas import Instant, PageQuerySchema, StrictSchema

STATUSES = tuple(status.value for status in ApprovalStatus)


class VoteSchema(Schema):
    approver = fields.String()
    at = Instant()
    comment = fields.String(allow_none=True)


class WorkloadSchema(Schema):
    """The requesting workload as people judge it: never a token or a secret value."""

    issuer = fields.String(allow_none=True)
    repository = fields.String(allow_none=True)
    ref = fields.String(allow_none=True)
    environment = fields.String(allow_none=True)
    event = fields.String(allow_none=True)
    actor = fields.String(allow_none=True)
    triggering_actor = fields.String(allow_none=True)
    run = fields.String(allow_none=True, metadata={"description": "GitHub run_id, GitLab pipeline_id"})
    run_attempt = fields.String(allow_none=True)
    workflow = fields.String(allow_none=True)
    sha = fields.String(allow_none=True)


class ApprovalSchema(Schema):
    id = fields.String()
    kind = fields.String(metadata={"enum": ["approval", "break_glass"]})
    status = fields.String(metadata={"enum": list(STATUSES)})
    end_reason = fields.String(allow_none=True)
    secret = fields.String()
    policy = fields.String()
    required = fields.Integer()
    approvers = fields.List(fields.String(), metadata={"description": "Who may approve; empty: any approver"})
    approvals = fields.List(fields.Nested(VoteSchema))
    denial = fields.Nested(VoteSchema, allow_none=True)
    justification = fields.String(allow_none=True)
    workload = fields.Nested(WorkloadSchema)
    lease_id = fields.String(allow_none=True)
    created_at = Instant()
    expires_at = Instant()
    decided_at = Instant(allow_none=True)


class PendingApprovalSchema(Schema):
    """``202`` on ``POST /v1/leases``: the request people must approve first."""

    approval = fields.Nested(ApprovalSchema)


class ApprovalPageSchema(Schema):
    items = fields.List(fields.Nested(ApprovalSchema))
    next_cursor = fields.String(allow_none=True)


class ApprovalQuerySchema(PageQuerySchema):
    status = fields.String(validate=validate.OneOf(STATUSES))
    policy = fields.String(validate=validate.Length(max=63))
    secret = fields.String(validate=validate.Length(max=63))
    repository = fields.String(validate=validate.Length(max=255))


class DecisionRequestSchema(StrictSchema):
    comment = fields.String(load_default=None, validate=validate.Length(max=1000))
