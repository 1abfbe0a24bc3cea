"""The broker's front door: ``/`` for people and programs, and ``/docs``, the API reference in Swagger UI.

Swagger UI's files come from the ``flask-swagger-ui`` package and are served from here, never from a CDN
(deployments are often offline). No inline script or style, no ``data:`` image (see ``app.docs_assets``):
the page loads only same-origin files, and its Content-Security-Policy allows nothing else.
"""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files
from typing import Any

from flask import Blueprint, redirect, render_template, request, send_from_directory, url_for
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response

from app.docs_assets import Image, without_data_urls

bp = Blueprint(
    "docs",
    __name__,
    template_folder="web/templates",
    static_folder="web/static/docs",
    static_url_path="/docs/static",
)

SWAGGER_UI_DIR = str(files("flask_swagger_ui") / "dist")
SWAGGER_UI_FILES = frozenset({"swagger-ui-bundle.js", "LICENSE"})
IMAGES_PATH = "/docs/swagger-ui/images/"
CACHE_FOR = 86400  # the files change only with the package
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",  # the OpenAPI document, and "Try it out" against this broker
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    )
)


def wants_html() -> bool:
    """Whether the caller prefers a page to JSON (a browser does; curl and API clients do not)."""
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "text/html"


@bp.get("/")
def index() -> Response | dict[str, Any]:
    """Browsers go to the pages; API clients get where things are, as JSON."""
    if wants_html():
        return redirect(url_for("web.index"))
    return {
        "name": "transom",
        "pages": url_for("web.index"),
        "docs": url_for("docs.reference"),
        "openapi": "/openapi.json",
        "health": "/healthz",
    }


@bp.get("/docs")
def reference() -> str:
    return render_template("docs/reference.html", openapi_url="/openapi.json")


@lru_cache(maxsize=1)
def _stylesheet() -> tuple[str, dict[str, Image]]:
    css = (files("flask_swagger_ui") / "dist" / "swagger-ui.css").read_text(encoding="utf-8")
    return without_data_urls(css, IMAGES_PATH)


def _cached(response: Response) -> Response:
    response.headers["Cache-Control"] = f"public, max-age={CACHE_FOR}"
    return response


@bp.get("/docs/swagger-ui/<name>")
def swagger_ui_file(name: str) -> Response:
    if name == "swagger-ui.css":
        return _cached(Response(_stylesheet()[0], mimetype="text/css"))
    if name not in SWAGGER_UI_FILES:
        raise NotFound()
    return _cached(send_from_directory(SWAGGER_UI_DIR, name, max_age=CACHE_FOR))


@bp.get("/docs/swagger-ui/images/<name>")
def swagger_ui_image(name: str) -> Response:
    image = _stylesheet()[1].get(name)
    if image is None:
        raise NotFound()
    return _cached(Response(image.body, mimetype=image.media_type))


@bp.after_request
def _security_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    return response
