"""Auditor and admin pages (server-rendered, no front-end build, no script).

The blueprint lives in ``blueprint``; importing the page modules here attaches their routes to it.
"""

from __future__ import annotations

from app.web import (  # noqa: F401  (each module registers its routes on the blueprint)
    error_pages,
    pages_admin,
    pages_approvals,
    pages_audit,
    pages_calendar,
    pages_leases,
    pages_session,
)
from app.web.blueprint import bp

__all__ = ["bp"]
