from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from app.identity.issuer_config import CLAIM_MAP_KEYS
from app.schemas import Instant, Name, StrictSchema

FLAVORS = ("github", "gitlab", "generic")
_URL = validate.URL(schemes={"http", "https"}, require_tld=False)


class IssuerRequestSchema(StrictSchema):
    name = Name(required=True)
    issuer = fields.String(required=True, validate=[validate.Length(max=2048), _URL])
    flavor = fields.String(required=True, validate=validate.OneOf(FLAVORS))
    audiences = fields.List(
        fields.String(validate=validate.Length(1, 512)), required=True, validate=validate.Length(1, 20)
    )
    jwks_uri = fields.String(load_default=None, allow_none=True, validate=[validate.Length(max=2048), _URL])
    leeway_seconds = fields.Integer(load_default=30, validate=validate.Range(0, 300), strict=True)
    claim_map = fields.Dict(
        keys=fields.String(validate=validate.OneOf(sorted(CLAIM_MAP_KEYS))),
        values=fields.String(validate=validate.Length(1, 255)),
        load_default=None,
        allow_none=True,
    )

    @validates_schema
    def _claim_map_for_generic(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("flavor") == "generic" and not data.get("claim_map"):
            raise ValidationError("the generic flavor needs a claim_map", "claim_map")
        if data.get("flavor") in ("github", "gitlab") and data.get("claim_map"):
            raise ValidationError("github and gitlab issuers use the built-in claim map", "claim_map")


class IssuerSchema(Schema):
    name = fields.String()
    issuer = fields.String()
    flavor = fields.String()
    audiences = fields.List(fields.String())
    jwks_uri = fields.String(allow_none=True)
    leeway_seconds = fields.Integer()
    claim_map = fields.Dict(values=fields.String(), allow_none=True)
    created_at = Instant()
    updated_at = Instant()


class IssuerPageSchema(Schema):
    items = fields.List(fields.Nested(IssuerSchema))
    next_cursor = fields.String(allow_none=True)
