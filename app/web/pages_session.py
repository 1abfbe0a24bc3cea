"""Signing in and out, the CSRF check on every POST, and what every page template can use."""

from __future__ import annotations

from typing import Any

from flask import redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from app.instants import format_instant
from app.web.blueprint import bp
from app.web.login import check_csrf, csrf_token, current_user, safe_next, sign_in, sign_out

bp.before_request(check_csrf)


@bp.context_processor
def _page_globals() -> dict[str, Any]:
    return {"user": current_user(), "csrf_token": csrf_token, "instant": _shown_instant}


def _shown_instant(value: Any) -> str:
    """An instant as the pages show it: UTC to the second (the exports keep full precision)."""
    if value is None:
        return ""
    return format_instant(value.replace(microsecond=0)).replace("T", " ")


@bp.get("/")
def index() -> Response:
    return redirect(url_for("web.leases"))


@bp.get("/login")
def login() -> str:
    return render_template("web/login.html", next=request.args.get("next", ""), error=None)


@bp.post("/login")
def login_submit() -> Response | tuple[str, int]:
    user = sign_in(request.form.get("token", ""))
    if user is None:
        error = "That token is unknown, expired or not a broker token (trn_…)."
        return render_template("web/login.html", next=request.form.get("next", ""), error=error), 401
    return redirect(safe_next(request.form.get("next")), code=303)


@bp.post("/logout")
def logout() -> Response:
    sign_out()
    return redirect(url_for("web.login"), code=303)
