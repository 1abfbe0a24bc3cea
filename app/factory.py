"""The app factory: settings, runtime, API blueprints, pages, error handling, the failure limit."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask, g, request
from flask_smorest import Api
from werkzeug.middleware.proxy_fix import ProxyFix

from app import api_metrics, docs_ui, errors, logs, ratelimit, request_context
from app.clock import Clock, SystemClock
from app.db import install_session_listeners
from app.errors import AppError
from app.leases import denials
from app.logs import configure_logging
from app.openapi import make_api
from app.ratelimit import FailureLimiter
from app.runtime import build_runtime, install_runtime, runtime_of
from app.settings import INSTANCE_DIR, Settings, load_settings, require_secret_key
from app.vault.port import SecretBackend
from app.web import bp as web_bp
from app.web.login import PageSessionInterface

JSON_METHODS = ("POST", "PUT", "PATCH")


def create_app(
    overrides: Mapping[str, Any] | None = None,
    *,
    clock: Clock | None = None,
    vault: SecretBackend | None = None,
) -> Flask:
    """Build the broker. ``overrides`` are settings (tests); ``clock`` and ``vault`` replace the real ones."""
    settings = load_settings(overrides)
    require_secret_key(settings)
    configure_logging(settings.log_level, settings.log_format or "text")  # no credentials, no colour codes

    app = Flask(__name__, instance_path=str(INSTANCE_DIR))
    app.config.update(
        SECRET_KEY=settings.secret_key or uuid.uuid4().hex,
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=settings.env == "production",
        API_TITLE="Transom",
        API_VERSION="v1",
        OPENAPI_VERSION="3.1.0",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
    )
    app.session_interface = PageSessionInterface()  # Secure whenever the request came over https
    install_session_listeners()  # before any session of this process writes
    install_runtime(app, build_runtime(settings, clock=clock or SystemClock(), vault=vault))

    api = make_api(app, marshmallow_plugin=MarshmallowPlugin(schema_name_resolver=_schema_name))
    _register_blueprints(api)
    errors.init_app(app)  # after Api(), whose own HTTP error handler this replaces
    request_context.init_app(app)
    app.register_blueprint(web_bp)
    app.register_blueprint(docs_ui.bp)  # / (pages or a JSON index) and /docs (the API reference)
    app.before_request(_start_request)
    app.after_request(_finish_request)
    app.teardown_request(_forget_request)
    api_metrics.install(app)  # answers by route and status, as they leave (429s included)
    _limit_failing_clients(app, settings, clock or SystemClock())  # after _finish_request: see ratelimit
    return app


def _limit_failing_clients(app: Flask, settings: Settings, clock: Clock) -> None:
    if settings.trusted_proxy_hops:
        # The client's address is then the one the nearest trusted proxy saw, not the proxy's own.
        hops = settings.trusted_proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    if settings.auth_failures_per_minute:
        limiter = FailureLimiter(settings.auth_failures_per_minute, timedelta(minutes=1), clock)
        ratelimit.install(app, limiter)
    # Identical refused lease requests are one ledger event with a count, whether or not the limit is on.
    denials.install(app, denials.DenialBursts(), runtime_of(app).sessions, clock)


def _register_blueprints(api: Api) -> None:
    from app.approvals.api import bp as approvals_bp
    from app.audit.api import bp as audit_bp
    from app.freezes.api import bp as freezes_bp
    from app.issuers.api import bp as issuers_bp
    from app.leases.api import bp as leases_bp
    from app.policies.api import bp as policies_bp
    from app.secrets.api import bp as secrets_bp
    from app.system.api import bp as system_bp
    from app.tokens.api import bp as tokens_bp
    from app.windows.api import bp as windows_bp

    for blueprint in (
        system_bp,
        tokens_bp,
        issuers_bp,
        secrets_bp,
        windows_bp,
        freezes_bp,
        policies_bp,
        leases_bp,
        approvals_bp,
        audit_bp,
    ):
        api.register_blueprint(blueprint)


def _schema_name(schema: Any) -> str:
    """OpenAPI component names; a PUT body (the create schema with ``name`` optional) gets its own."""
    cls = schema if isinstance(schema, type) else type(schema)
    name: str = cls.__name__.removesuffix("Schema")
    if not isinstance(schema, type) and schema.partial:
        name += "Replace"
    return name


class UnsupportedMediaType(AppError):
    status, type_, title = 415, "unsupported-media-type", "Unsupported Media Type"


def _start_request() -> None:
    g.request_id = request.headers.get("X-Request-Id", "")[:64] or uuid.uuid4().hex
    logs.request_id.set(g.request_id)  # on every log line written while serving it
    has_body = request.content_length or request.headers.get("Transfer-Encoding")
    is_page = request.blueprint == web_bp.name  # the pages post HTML forms, checked for CSRF there
    if request.method in JSON_METHODS and has_body and not request.is_json and not is_page:
        raise UnsupportedMediaType("The request body must be JSON (Content-Type: application/json).")


def _finish_request(response: Any) -> Any:
    response.headers["X-Request-Id"] = g.get("request_id", "")
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response


def _forget_request(_exc: BaseException | None) -> None:
    logs.request_id.set(None)


def settings_of(app: Flask) -> Settings:
    return runtime_of(app).settings
