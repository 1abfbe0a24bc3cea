"""Small helpers shared by the hvac adapter's modules: request values in, response sections out."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import quote

from app.vault.port import VaultRejected, VaultUnavailable


def seconds(delta: timedelta, what: str) -> int:
    whole = int(delta.total_seconds())  # floor: a credential may end a fraction early, never late
    if whole < 1:
        raise ValueError(f"{what} must be at least one second")
    return whole


def vault_path(path: str) -> str:
    """Quote a configured path for the URL; refuse empty, ``.`` and ``..`` segments."""
    segments = path.strip("/").split("/")
    if any(segment in ("", ".", "..") for segment in segments):
        raise VaultRejected("invalid_spec", "secret path has an empty, '.' or '..' segment")
    return quote("/".join(segments), safe="/")


def granted(duration: Any) -> timedelta | None:
    return timedelta(seconds=duration) if isinstance(duration, int) and duration > 0 else None


def section(body: dict[str, Any], name: str) -> dict[str, Any]:
    value = body.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise VaultUnavailable("bad_response", f"Vault's response has an unexpected {name!r} section")
    return value


def require(value: str | None) -> str:
    if value is None:
        raise ValueError("a required field is missing")  # guarded by SecretSpec / VaultHandle validation
    return value
