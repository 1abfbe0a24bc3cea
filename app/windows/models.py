from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime


class Window(Base):
    """A deployment window: when leases may be granted. The schedule is the API's JSON shape."""

    __tablename__ = "windows"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    timezone: Mapped[str] = mapped_column(String(64))
    schedule: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Freeze(Base):
    """A change freeze: while it applies nothing is granted or renewed, and covered leases are revoked."""

    __tablename__ = "freezes"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    timezone: Mapped[str] = mapped_column(String(64))
    schedule: Mapped[dict[str, Any]] = mapped_column(JSON)
    policies: Mapped[list[str]] = mapped_column(JSON)  # empty: every policy
    reason: Mapped[str] = mapped_column(Text, default="")
    # The start of the latest occurrence whose covered leases were already revoked, so the scheduler
    # revokes once per occurrence, however many workers run.
    last_enforced_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
