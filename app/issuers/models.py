from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime


class Issuer(Base):
    """An OIDC issuer whose ID tokens Transom accepts (GitHub Actions, GitLab CI, generic)."""

    __tablename__ = "issuers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    issuer: Mapped[str] = mapped_column(String(2048), unique=True)
    flavor: Mapped[str] = mapped_column(String(16))
    audiences: Mapped[list[str]] = mapped_column(JSON)
    jwks_uri: Mapped[str | None] = mapped_column(String(2048))
    leeway_seconds: Mapped[int]
    claim_map: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
