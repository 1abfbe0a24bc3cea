from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from app.decision.patterns import validate_pattern
from app.schemas import Duration, Instant, Name, StrictSchema

MAX_LIST = 100


def _pattern(value: str) -> None:
    if problem := validate_pattern(value):
        raise ValidationError(problem)


def _patterns(**kwargs: Any) -> fields.List[str]:
    return fields.List(fields.String(validate=_pattern), validate=validate.Length(max=MAX_LIST), **kwargs)


def _strings(**kwargs: Any) -> fields.List[str]:
    item = fields.String(validate=validate.Length(1, 255))
    return fields.List(item, validate=validate.Length(max=MAX_LIST), **kwargs)


class RunnersSchema(StrictSchema):
    environments = _strings(load_default=list)
    ids = _strings(load_default=list)


class PolicyRequestSchema(StrictSchema):
    name = Name(required=True)
    issuer = Name(required=True)
    secrets = fields.List(Name(), required=True, validate=validate.Length(1, MAX_LIST))
    repositories = _patterns(load_default=list)
    branches = _patterns(load_default=list)
    tags = _patterns(load_default=list)
    require_protected_ref = fields.Boolean(load_default=False, truthy={True}, falsy={False})
    environments = _strings(load_default=list)
    runners = fields.Nested(RunnersSchema, load_default=lambda: {"environments": [], "ids": []})
    events = fields.List(
        fields.String(validate=validate.Length(1, 64)),
        load_default=None,
        validate=validate.Length(max=MAX_LIST),
    )
    windows = fields.List(Name(), required=True, validate=validate.Length(1, MAX_LIST))
    default_ttl = Duration(load_default=None)
    max_ttl = Duration(required=True)
    max_active = fields.Integer(
        load_default=None, allow_none=True, validate=validate.Range(1, 100_000), strict=True
    )

    @validates_schema
    def _ttls(self, data: dict[str, Any], **kwargs: Any) -> None:
        max_ttl, default_ttl = data.get("max_ttl"), data.get("default_ttl")
        if max_ttl is not None and max_ttl.total_seconds() < 5:
            raise ValidationError("must be at least 5 seconds", "max_ttl")
        if default_ttl is not None and default_ttl.total_seconds() < 5:
            raise ValidationError("must be at least 5 seconds", "default_ttl")
        if max_ttl is not None and default_ttl is not None and default_ttl > max_ttl:
            raise ValidationError("must not be longer than max_ttl", "default_ttl")


class PolicySchema(Schema):
    name = fields.String()
    issuer = fields.String()
    secrets = fields.List(fields.String())
    repositories = fields.List(fields.String())
    branches = fields.List(fields.String())
    tags = fields.List(fields.String())
    require_protected_ref = fields.Boolean()
    environments = fields.List(fields.String())
    runners = fields.Function(lambda p: {"environments": p.runner_environments, "ids": p.runner_ids})
    events = fields.List(fields.String(), allow_none=True)
    windows = fields.List(fields.String())
    default_ttl = fields.Integer(attribute="default_ttl_seconds")
    max_ttl = fields.Integer(attribute="max_ttl_seconds")
    max_active = fields.Integer(allow_none=True)
    created_at = Instant()
    updated_at = Instant()


class PolicyPageSchema(Schema):
    items = fields.List(fields.Nested(PolicySchema))
    next_cursor = fields.String(allow_none=True)


class EvaluateRequestSchema(StrictSchema):
    token = fields.String(required=True, validate=validate.Length(1, 65536))
    secret = Name(required=True)
    at = Instant(load_default=None)
    ttl = Duration(load_default=None)


class ReasonSchema(Schema):
    code = fields.String()
    message = fields.String()
    policy = fields.String(allow_none=True)  # null when no policy produced it (a token problem)


class EvaluationSchema(Schema):
    allowed = fields.Boolean()
    reasons = fields.List(fields.Nested(ReasonSchema))
    expires_at = Instant(allow_none=True)
    bounded_by = fields.String(allow_none=True)
    ttl = fields.Integer(allow_none=True)
