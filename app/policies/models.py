from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String, false
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime


class Policy(Base):
    """Who may lease which secrets, from where, and when. Durations are stored in seconds."""

    __tablename__ = "policies"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    issuer: Mapped[str] = mapped_column(String(63))
    secrets: Mapped[list[str]] = mapped_column(JSON)
    repositories: Mapped[list[str]] = mapped_column(JSON)
    branches: Mapped[list[str]] = mapped_column(JSON)
    tags: Mapped[list[str]] = mapped_column(JSON)
    require_protected_ref: Mapped[bool] = mapped_column(default=False)
    environments: Mapped[list[str]] = mapped_column(JSON)
    runner_environments: Mapped[list[str]] = mapped_column(JSON)
    runner_ids: Mapped[list[str]] = mapped_column(JSON)
    events: Mapped[list[str] | None] = mapped_column(JSON)  # None: the trusted default events
    repository_ids: Mapped[list[str] | None] = mapped_column(JSON)  # None: any id; else one must match
    require_protected_environment: Mapped[bool] = mapped_column(default=False, server_default=false())
    workflows: Mapped[list[str] | None] = mapped_column(JSON)  # None: any workflow; else patterns
    source_networks: Mapped[list[str] | None] = mapped_column(JSON)  # None: any address; else CIDR blocks
    # {"required", "approvers", "timeout_seconds"} (+ "max_ttl_seconds" for break_glass); None: none.
    approval: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    break_glass: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    windows: Mapped[list[str]] = mapped_column(JSON)
    default_ttl_seconds: Mapped[int]
    max_ttl_seconds: Mapped[int]
    max_active: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
