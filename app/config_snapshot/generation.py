"""Bumping and reading the configuration generation.

The bump is a ``before_flush`` listener on every session, so no configuration write can forget it: any
flush that adds, changes or deletes a configuration row also increments the counter, in the same
transaction. It is installed at start-up by ``app.db.install_session_listeners``, not by importing this.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, inspect, select, update
from sqlalchemy.orm import Session

from app.config_snapshot.models import GENERATION_ROW_ID, ConfigGeneration
from app.issuers.models import Issuer
from app.policies.models import Policy
from app.secrets.models import Secret
from app.windows.models import Freeze, Window

CONFIG_MODELS = (Issuer, Secret, Window, Freeze, Policy)
# Bookkeeping the scheduler writes on configuration rows; it changes no decision. (Bumping for it would also
# take the generation lock while the freeze row is held, the opposite order of an admin's freeze change.)
BOOKKEEPING = frozenset({"last_enforced_start"})

_GENERATIONS = cast(Table, ConfigGeneration.__table__)
# Built once, on the table (no ORM entity to compile): every request reads it (issue 14).
_READ = select(_GENERATIONS.c.generation).where(_GENERATIONS.c.id == GENERATION_ROW_ID)
_READ_SHARED = _READ.with_for_update(read=True)


def read_generation(session: Session, *, shared_lock: bool = False) -> int:
    """The generation; with ``shared_lock``, the row is also held shared until the transaction ends
    (``FOR SHARE`` on PostgreSQL): no configuration change can commit meanwhile, and one not yet committed
    is waited for and then read. SQLite has one writer at a time, which orders the same way."""
    return int(session.execute(_READ_SHARED if shared_lock else _READ).scalar_one())


def bump_generation(session: Session) -> None:
    session.execute(
        update(ConfigGeneration)
        .where(ConfigGeneration.id == GENERATION_ROW_ID)
        .values(generation=ConfigGeneration.generation + 1)
    )


def _changes_configuration(session: Session) -> bool:
    if any(isinstance(obj, CONFIG_MODELS) for obj in (*session.new, *session.deleted)):
        return True
    return any(isinstance(obj, CONFIG_MODELS) and _changed_fields(obj) - BOOKKEEPING for obj in session.dirty)


def _changed_fields(obj: object) -> set[str]:
    state = inspect(obj)
    return {attr.key for attr in state.attrs if attr.history.has_changes()}


def bump_on_configuration_change(session: Session, _context: Any, _instances: Any) -> None:
    if _changes_configuration(session):
        bump_generation(session)
