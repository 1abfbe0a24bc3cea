"""Auditor and admin pages (server-rendered, no front-end build)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("web", __name__, url_prefix="/ui", template_folder="templates")
