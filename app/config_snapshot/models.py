from __future__ import annotations

from sqlalchemy import BigInteger
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base

GENERATION_ROW_ID = 1


class ConfigGeneration(Base):
    """One row: how many times the decision configuration has changed."""

    __tablename__ = "config_generation"

    id: Mapped[int] = mapped_column(primary_key=True)
    generation: Mapped[int] = mapped_column(BigInteger)
