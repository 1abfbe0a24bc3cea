from __future__ import annotations

import re
from typing import Any

from marshmallow import Schema, ValidationError, fields, post_dump, validate, validates_schema

from app.schemas import Instant, Name, StrictSchema

KINDS = ("kv", "token", "dynamic")
# Vault paths: segments of safe characters; no '..', no leading '/', nothing that could escape the mount.
VAULT_PATH = re.compile(r"^[A-Za-z0-9_.@{}-]+(/[A-Za-z0-9_.@{}-]+)*$")
VAULT_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")

FIELDS_BY_KIND = {
    "kv": {"mount", "path", "keys"},
    "token": {"policies", "num_uses"},
    "dynamic": {"path"},
}
OPTIONAL = {"name", "kind"}


def _vault_path(value: str) -> None:
    if ".." in value.split("/") or not VAULT_PATH.match(value):
        raise ValidationError("must be a Vault path such as 'deploy/prod' (no leading '/', no '..')")


class SecretRequestSchema(StrictSchema):
    name = Name(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    mount = fields.String(validate=[validate.Length(1, 255), _vault_path])
    path = fields.String(validate=[validate.Length(1, 1024), _vault_path])
    keys = fields.List(
        fields.String(validate=validate.Length(1, 255)), validate=validate.Length(1, 100), allow_none=True
    )
    policies = fields.List(
        fields.String(validate=validate.Regexp(VAULT_NAME, error="must be a Vault policy name")),
        validate=validate.Length(1, 50),
    )
    num_uses = fields.Integer(validate=validate.Range(0, 1000), strict=True)

    @validates_schema
    def _fields_fit_kind(self, data: dict[str, Any], **kwargs: Any) -> None:
        kind = data.get("kind")
        if kind not in FIELDS_BY_KIND:
            return
        allowed = FIELDS_BY_KIND[kind]
        stray = sorted(set(data) - allowed - OPTIONAL)
        errors: dict[str, list[str]] = {f: [f"is not a field of a {kind} secret"] for f in stray}
        if kind in ("kv", "dynamic") and not data.get("path"):
            errors["path"] = [f"a {kind} secret needs a path"]
        if kind == "token" and not data.get("policies"):
            errors["policies"] = ["a token secret needs at least one Vault policy"]
        if errors:
            raise ValidationError(errors)


class SecretSchema(Schema):
    name = fields.String()
    kind = fields.String()
    mount = fields.String()
    path = fields.String()
    keys = fields.List(fields.String(), allow_none=True)
    policies = fields.List(fields.String(), attribute="vault_policies")
    num_uses = fields.Integer()
    created_at = Instant()
    updated_at = Instant()

    @post_dump
    def _only_kind_fields(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        allowed = FIELDS_BY_KIND.get(data.get("kind", ""), set()) | OPTIONAL | {"created_at", "updated_at"}
        return {k: v for k, v in data.items() if k in allowed}


class SecretPageSchema(Schema):
    items = fields.List(fields.Nested(SecretSchema))
    next_cursor = fields.String(allow_none=True)
