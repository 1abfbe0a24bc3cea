"""A policy's ``approval`` and ``break_glass`` (docs/API.md, "Approvals and break-glass"): request schema,
stored columns, the decision core's rule (app/decision/policy_view.py), and the response shape."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from app.decision.policy_view import ApprovalRule
from app.schemas import Duration, Name, StrictSchema

DEFAULT_TIMEOUT = timedelta(minutes=30)
MIN_TIMEOUT = timedelta(seconds=10)
MAX_TIMEOUT = timedelta(days=7)
MAX_APPROVERS = 100
MAX_REQUIRED = 20


class ApprovalRuleSchema(StrictSchema):
    required = fields.Integer(required=True, strict=True, validate=validate.Range(1, MAX_REQUIRED))
    approvers = fields.List(Name(), load_default=list, validate=validate.Length(max=MAX_APPROVERS))
    timeout = Duration(load_default=None, metadata={"description": "A pending request expires after it; 30m"})

    @validates_schema
    def _consistent(self, data: dict[str, Any], **kwargs: Any) -> None:
        timeout = data.get("timeout")
        if timeout is not None and not MIN_TIMEOUT <= timeout <= MAX_TIMEOUT:
            raise ValidationError("must be between 10 seconds and 7 days", "timeout")
        approvers = set(data.get("approvers") or ())
        if approvers and data.get("required", 0) > len(approvers):
            raise ValidationError("cannot exceed the number of approvers: nobody could approve", "required")


class BreakGlassRuleSchema(ApprovalRuleSchema):
    max_ttl = Duration(load_default=None, metadata={"description": "A break-glass lease's longest life"})

    @validates_schema
    def _max_ttl(self, data: dict[str, Any], **kwargs: Any) -> None:
        max_ttl = data.get("max_ttl")
        if max_ttl is not None and max_ttl.total_seconds() < 5:
            raise ValidationError("must be at least 5 seconds", "max_ttl")


def to_column(rule: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A loaded rule as stored: durations in seconds, approvers without repeats."""
    if rule is None:
        return None
    column: dict[str, Any] = {
        "required": rule["required"],
        "approvers": list(dict.fromkeys(rule.get("approvers") or [])),
        "timeout_seconds": int((rule.get("timeout") or DEFAULT_TIMEOUT).total_seconds()),
    }
    if rule.get("max_ttl") is not None:
        column["max_ttl_seconds"] = int(rule["max_ttl"].total_seconds())
    return column


def to_rule(column: Mapping[str, Any] | None) -> ApprovalRule | None:
    if column is None:
        return None
    max_ttl = column.get("max_ttl_seconds")
    return ApprovalRule(
        required=int(column["required"]),
        approvers=tuple(column.get("approvers") or ()),
        timeout=timedelta(seconds=int(column["timeout_seconds"])),
        max_ttl=None if max_ttl is None else timedelta(seconds=int(max_ttl)),
    )


def to_response(column: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """As the API shows it: durations in seconds under the request's names."""
    if column is None:
        return None
    shown: dict[str, Any] = {
        "required": column["required"],
        "approvers": list(column.get("approvers") or []),
        "timeout": column["timeout_seconds"],
    }
    if "max_ttl_seconds" in column:
        shown["max_ttl"] = column["max_ttl_seconds"]
    return shown


RULE_DOC = {"type": "object", "nullable": True, "description": "docs/API.md, 'Approvals and break-glass'"}
