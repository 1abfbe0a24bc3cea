"""The OpenAPI document as clients should read it: errors are problem+json, credentials are bearer tokens."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_smorest import Api
from flask_smorest.utils import prepare_response

from app.auth import SECURITY_SCHEMES
from app.errors import PROBLEM_JSON
from app.schemas import ProblemSchema
from app.windows.schedule_doc import SCHEDULE_COMPONENTS


class TransomApi(Api):  # type: ignore[misc]  # flask-smorest ships no type information
    """flask-smorest's Api, except that the default error response every operation documents is the
    problem+json body the broker really answers with, not flask-smorest's own error shape."""

    def _register_responses(self) -> None:
        response: dict[str, Any] = {
            "description": "An error, as RFC 9457 problem details (a denial names its `reasons`)",
            "schema": ProblemSchema,
        }
        prepare_response(response, self.spec, PROBLEM_JSON)
        self.spec.components.response(self.DEFAULT_ERROR_RESPONSE_NAME, response, lazy=True)


def make_api(app: Flask, **spec_kwargs: Any) -> Api:
    api = TransomApi(app, spec_kwargs=spec_kwargs)
    for name, scheme in SECURITY_SCHEMES.items():
        api.spec.components.security_scheme(name, scheme)
    for name, schema in SCHEDULE_COMPONENTS.items():  # the schedule fields' oneOf points at these
        api.spec.components.schema(name, schema)
    return api
