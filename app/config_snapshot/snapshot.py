"""An immutable copy of the decision configuration at one generation, and the per-process cache of it."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.config_snapshot.generation import read_generation
from app.decision.policy import PolicyView
from app.identity.issuer_config import IssuerConfig
from app.issuers.models import Issuer
from app.issuers.service import to_config
from app.policies.models import Policy
from app.policies.service import to_view
from app.secrets.models import Secret
from app.secrets.service import to_spec
from app.vault.port import SecretSpec
from app.windows.calendar import Calendar


@dataclass(frozen=True)
class ConfigSnapshot:
    """Plain data only (no ORM rows): it is shared by the threads of a process and outlives sessions."""

    generation: int
    issuers: Mapping[str, IssuerConfig]  # by ``iss`` URL
    secrets: Mapping[str, SecretSpec]  # by name
    policies: Sequence[PolicyView]  # in name order: the order in which they are tried
    calendar: Calendar

    @classmethod
    def load(cls, session: Session, generation: int) -> ConfigSnapshot:
        """Read in the caller's transaction. On PostgreSQL (read committed) a change committed after the
        generation was read may already show; the snapshot is then newer than its number, never older,
        and the next request, seeing the higher number, loads again."""
        return cls(
            generation=generation,
            issuers={row.issuer: to_config(row) for row in session.scalars(select(Issuer))},
            secrets={row.name: to_spec(row) for row in session.scalars(select(Secret))},
            policies=tuple(to_view(row) for row in session.scalars(select(Policy).order_by(Policy.name))),
            calendar=Calendar.load(session),
        )

    def issuer(self, url: str) -> IssuerConfig | None:
        return self.issuers.get(url)

    def secret(self, name: str) -> SecretSpec | None:
        return self.secrets.get(name)

    def policy(self, name: str) -> PolicyView | None:
        return next((p for p in self.policies if p.name == name), None)

    def policies_naming(self, secret: str) -> list[PolicyView]:
        return [p for p in self.policies if secret in p.secrets]


class SnapshotCache:
    """The newest snapshot this process has loaded. ``current`` costs one query while nothing changed."""

    def __init__(self) -> None:
        self._snapshot: ConfigSnapshot | None = None
        self._lock = threading.Lock()

    def current(self, session: Session) -> ConfigSnapshot:
        generation = read_generation(session)
        cached = self._snapshot
        if cached is not None and cached.generation == generation:
            return cached
        fresh = ConfigSnapshot.load(session, generation)
        with self._lock:
            # Threads may race to load; keep the highest generation, never step back.
            if self._snapshot is None or self._snapshot.generation <= generation:
                self._snapshot = fresh
        return fresh
