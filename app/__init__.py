"""Transom: a secrets broker with just-in-time leases for CI pipelines.

Kept free of imports: the CI client (``transom lease``) lives in this package too, and must start without
loading Flask, SQLAlchemy and the rest of the server. ``create_app`` is in ``app.factory``; it is also
reachable here, loaded on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.factory import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from app.factory import create_app

        return create_app
    raise AttributeError(f"module 'app' has no attribute {name!r}")
