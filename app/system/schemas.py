"""What the unauthenticated system routes answer."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

STATES = validate.OneOf(("ok", "unavailable"))


class HealthSchema(Schema):
    status = fields.String(required=True, validate=validate.Equal("ok"))


class ReadinessProblemsSchema(Schema):
    database = fields.String()
    vault = fields.String()


class ReadinessSchema(Schema):
    database = fields.String(required=True, validate=STATES)
    vault = fields.String(required=True, validate=STATES)
    error = fields.Nested(ReadinessProblemsSchema, metadata={"description": "What does not answer (503)"})


# Prometheus' text exposition format.
METRICS_SCHEMA = {"type": "string"}
METRICS_CONTENT_TYPE = "text/plain"
