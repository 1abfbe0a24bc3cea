"""Create, read, replace and delete of named configuration objects, each change with its ledger event.

Issuers, secrets, windows, freezes and policies differ in their fields and rules, not in how they are
stored: each feature's service adds its own checks around this store. Like every service that does not call
Vault, the store flushes and never commits or rolls back: its caller does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Generic, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.audit.ledger import Actor, Ledger
from app.clock import Clock
from app.errors import BadRequest, Conflict, NotFound

M = TypeVar("M", bound=Any)  # a model with ``id``, ``name``, ``created_at`` and ``updated_at``


class ConfigStore(Generic[M]):
    def __init__(self, session: Session, clock: Clock, ledger: Ledger, model: type[M], kind: str) -> None:
        self._session = session
        self._clock = clock
        self._ledger = ledger
        self._model = model
        self.kind = kind  # "issuer", "secret", ... as in the ledger's "<kind>.created"

    def list(self, *, limit: int, before_id: int | None) -> Sequence[M]:
        query = select(self._model).order_by(self._model.id.desc()).limit(limit)
        if before_id is not None:
            query = query.where(self._model.id < before_id)
        return self._session.scalars(query).all()

    def find(self, name: str) -> M | None:
        found: M | None = self._session.scalar(select(self._model).where(self._model.name == name))
        return found

    def get(self, name: str) -> M:
        found = self.find(name)
        if found is None:
            raise NotFound(f"no {self.kind} named {name!r}")
        return found

    def names(self) -> set[str]:
        return set(self._session.scalars(select(self._model.name)))

    def create(self, values: Mapping[str, Any], *, actor: Actor, snapshot: Mapping[str, Any]) -> M:
        now = self._clock.now()
        obj: M = self._model(**values, created_at=now, updated_at=now)
        if self.find(values["name"]) is not None:
            raise Conflict(f"a {self.kind} named {values['name']!r} already exists")
        self._session.add(obj)
        self._flush(values["name"])
        self._record("created", values["name"], actor, snapshot)
        return obj

    def replace(
        self, name: str, values: Mapping[str, Any], *, actor: Actor, snapshot: Mapping[str, Any]
    ) -> M:
        if values.get("name", name) != name:
            raise BadRequest(
                "The body's name must equal the name in the path.",
                errors={"name": [f"must be {name!r} (renaming is not supported)"]},
            )
        obj = self.get(name)
        for field, value in values.items():
            setattr(obj, field, value)
        obj.updated_at = self._clock.now()
        self._flush(name)
        self._record("updated", name, actor, snapshot)
        return obj

    def delete(self, name: str, *, actor: Actor) -> M:
        obj = self.get(name)
        self._session.delete(obj)
        self._flush(name)
        self._record("deleted", name, actor, {})
        return obj

    def _flush(self, name: str) -> None:
        """Write now, so a unique name or URL taken meanwhile is a 409. The transaction stays the caller's to
        end (docs/ARCHITECTURE.md, "Who changes lease state, and who commits"): a view's session closes, and
        rolls back, when the 409 leaves it."""
        try:
            self._session.flush()
        except IntegrityError:
            raise Conflict(f"the {self.kind} {name!r} conflicts with an existing one") from None

    def _record(self, verb: str, name: str, actor: Actor, snapshot: Mapping[str, Any]) -> None:
        details: dict[str, Any] = {"name": name}
        if snapshot:
            details["object"] = dict(snapshot)
        self._ledger.append(f"{self.kind}.{verb}", actor=actor, details=details)
