from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime


class ApiToken(Base):
    """A broker API token for admins and auditors. Only its SHA-256 digest is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    role: Mapped[str] = mapped_column(String(16))  # admin | auditor | approver
    # The person's login on the CI platform: an approver never approves a request of that actor.
    ci_login: Mapped[str | None] = mapped_column(String(255))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # to the minute (docs/API.md)
    # Page sessions carry the generation they began in; signing out bumps it, so a copied cookie stops
    # working on the server (docs/API.md, "Authentication").
    session_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
