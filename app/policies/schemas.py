from __future__ import annotations

import ipaddress
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from app.decision.patterns import validate_pattern
from app.policies.approval_rules import RULE_DOC, ApprovalRuleSchema, BreakGlassRuleSchema, to_response
from app.schemas import Duration, Instant, Name, StrictSchema

MAX_LIST = 100
STRINGS_DOC = {"type": "array", "items": {"type": "string"}}  # a response list (ids are strings)


def _pattern(value: str) -> None:
    if problem := validate_pattern(value):
        raise ValidationError(problem)


def _patterns(**kwargs: Any) -> fields.List[str]:
    return fields.List(fields.String(validate=_pattern), validate=validate.Length(max=MAX_LIST), **kwargs)


def _strings(**kwargs: Any) -> fields.List[str]:
    item = fields.String(validate=validate.Length(1, 255))
    return fields.List(item, validate=validate.Length(max=MAX_LIST), **kwargs)


class PlatformId(fields.Field[str]):
    """A platform's id (repository, runner): a string or a whole number, read as a string, because tokens
    state ids as strings (GitHub's ``repository_id`` is ``"123456"``) and admins write them as numbers."""

    def __init__(self, **kwargs: Any) -> None:
        doc = {
            "oneOf": [{"type": "string", "minLength": 1, "maxLength": 255}, {"type": "integer", "minimum": 0}]
        }
        super().__init__(metadata=doc, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValidationError("must be a string or a whole number")
        if isinstance(value, int):
            if value < 0:
                raise ValidationError("must not be negative")
            return str(value)
        if not 1 <= len(value) <= 255:
            raise ValidationError("must be 1 to 255 characters long")
        return value


class Cidr(fields.String):
    """A CIDR block, IPv4 or IPv6, read as its normal form (``10.1.0.0/16``, ``2001:db8::/32``). A block with
    host bits set (``10.1.2.3/16``) is refused rather than guessed: did the admin mean the host or the net?"""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(validate=validate.Length(1, 64), metadata={"example": "10.1.0.0/16"}, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return str(ipaddress.ip_network(text, strict=True))
        except ValueError as error:
            raise ValidationError(f"not a CIDR block: {error}") from None


class RunnersSchema(StrictSchema):
    environments = _strings(load_default=list)
    ids = fields.List(PlatformId(), load_default=list, validate=validate.Length(max=MAX_LIST))


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
    # When given, the token's repository id must be one of them as well (docs/API.md, "Policies").
    repository_ids = fields.List(
        PlatformId(),
        load_default=None,
        allow_none=True,
        validate=validate.Length(1, MAX_LIST, error="give 1 to {max} ids, or leave repository_ids out"),
    )
    require_protected_environment = fields.Boolean(load_default=False, truthy={True}, falsy={False})
    # When given, the workload's workflow must match one, and the client address be in one block
    # (docs/API.md, "Policies").
    workflows = fields.List(
        fields.String(validate=_pattern),
        load_default=None,
        allow_none=True,
        validate=validate.Length(1, MAX_LIST, error="give 1 to {max} patterns, or leave workflows out"),
    )
    source_networks = fields.List(
        Cidr(),
        load_default=None,
        allow_none=True,
        validate=validate.Length(
            1, MAX_LIST, error="give 1 to {max} CIDR blocks, or leave source_networks out"
        ),
    )
    default_ttl = Duration(load_default=None)
    max_ttl = Duration(required=True)
    max_active = fields.Integer(
        load_default=None, allow_none=True, validate=validate.Range(1, 100_000), strict=True
    )
    # People approve every lease; people may approve an exception to the windows and freezes.
    approval = fields.Nested(ApprovalRuleSchema, load_default=None, allow_none=True)
    break_glass = fields.Nested(BreakGlassRuleSchema, load_default=None, allow_none=True)

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
    runners = fields.Function(
        lambda p: {"environments": p.runner_environments, "ids": p.runner_ids},
        metadata={"type": "object", "properties": {"environments": STRINGS_DOC, "ids": STRINGS_DOC}},
    )
    events = fields.List(fields.String(), allow_none=True)
    windows = fields.List(fields.String())
    repository_ids = fields.List(fields.String(), allow_none=True)
    require_protected_environment = fields.Boolean()
    workflows = fields.List(fields.String(), allow_none=True)
    source_networks = fields.List(fields.String(), allow_none=True)
    default_ttl = fields.Integer(attribute="default_ttl_seconds")
    max_ttl = fields.Integer(attribute="max_ttl_seconds")
    max_active = fields.Integer(allow_none=True)
    approval = fields.Function(lambda p: to_response(p.approval), metadata=RULE_DOC)
    break_glass = fields.Function(lambda p: to_response(p.break_glass), metadata=RULE_DOC)
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
    # The client address to judge source_networks against; without it such a policy denies.
    source_address = fields.IP(load_default=None)


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
