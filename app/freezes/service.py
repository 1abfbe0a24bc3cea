"""Change freezes: while one applies nothing is granted or renewed, and the leases it covers are revoked."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.ledger import Actor, Ledger
from app.clock import Clock
from app.config_store import ConfigStore
from app.errors import BadRequest
from app.policies.models import Policy
from app.windows.calendar import Calendar
from app.windows.models import Freeze
from app.windows.service import Occurrences, occurrences_between, schedule_columns


def governed_policies(session: Session, freeze_policies: Sequence[str]) -> set[str]:
    """The policies a freeze applies to: those it names, or every policy when it names none."""
    if freeze_policies:
        return set(freeze_policies)
    return set(session.scalars(select(Policy.name)))


class FreezeService:
    def __init__(self, session: Session, clock: Clock, ledger: Ledger) -> None:
        self._session = session
        self._store: ConfigStore[Freeze] = ConfigStore(session, clock, ledger, Freeze, "freeze")

    def list_freezes(self, *, limit: int, before_id: int | None) -> Sequence[Freeze]:
        return self._store.list(limit=limit, before_id=before_id)

    def get_freeze(self, name: str) -> Freeze:
        return self._store.get(name)

    def create_freeze(self, values: Mapping[str, Any], *, actor: Actor) -> Freeze:
        columns = self._columns(values)
        return self._store.create(columns, actor=actor, snapshot=columns)

    def replace_freeze(
        self, name: str, values: Mapping[str, Any], *, actor: Actor
    ) -> tuple[Freeze, set[str]]:
        """The new freeze and every policy it governed before or governs now (all need re-evaluation)."""
        before = set(self._store.get(name).policies)
        columns = self._columns({**values, "name": values.get("name", name)})
        freeze = self._store.replace(name, columns, actor=actor, snapshot=columns)
        return freeze, governed_policies(self._session, sorted(before)) | governed_policies(
            self._session, freeze.policies
        )

    def delete_freeze(self, name: str, *, actor: Actor) -> None:
        self._store.delete(name, actor=actor)

    def occurrences(self, name: str, start: datetime, end: datetime) -> Occurrences:
        return occurrences_between(Calendar.zoned(self._store.get(name)), start, end)

    def _columns(self, values: Mapping[str, Any]) -> dict[str, Any]:
        columns = schedule_columns(values)
        policies = list(dict.fromkeys(values.get("policies") or []))
        known = set(self._session.scalars(select(Policy.name)))
        missing = [p for p in policies if p not in known]
        if missing:
            raise BadRequest(
                "The freeze names policies that do not exist.",
                errors={"policies": [f"no policy named {p!r}" for p in missing]},
            )
        return {**columns, "policies": policies, "reason": values.get("reason") or ""}
