"""The commit rule (docs/ARCHITECTURE.md, "Who changes lease state, and who commits"): a service that does
not call Vault never ends its caller's transaction, and the configuration generation bump is a listener
installed by ``install_session_listeners`` at start-up, not by importing a module."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from app.audit.ledger import Actor, Ledger
from app.audit.models import AuditEvent
from app.clock import FrozenClock
from app.config_snapshot.generation import read_generation
from app.config_store import ConfigStore
from app.db import install_session_listeners, make_engine, make_session_factory
from app.errors import Conflict
from app.issuers.models import Issuer

ADMIN = Actor("admin", "tests")
CLOCK = FrozenClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


def _issuer(name: str, url: str) -> dict[str, Any]:
    return {
        "name": name,
        "issuer": url,
        "flavor": "generic",
        "audiences": ["transom"],
        "jwks_uri": None,
        "leeway_seconds": 30,
        "claim_map": None,
    }


def _store(session: Session) -> ConfigStore[Issuer]:
    return ConfigStore(session, CLOCK, Ledger(session, CLOCK), Issuer, "issuer")


def test_a_refused_configuration_write_keeps_the_callers_other_work(sessions: sessionmaker[Session]) -> None:
    """A caller that tries a write in a savepoint keeps what it did before when the store refuses it:
    the store raises 409 and leaves the caller's transaction to the caller."""
    install_session_listeners()
    with sessions() as session:
        store = _store(session)
        store.create(_issuer("first", "https://ci.example"), actor=ADMIN, snapshot={})
        with pytest.raises(Conflict), session.begin_nested():
            store.create(_issuer("second", "https://ci.example"), actor=ADMIN, snapshot={})  # same iss
        session.commit()
    with sessions() as session:
        assert session.scalars(select(Issuer.name)).all() == ["first"]
        # The refused write's event went with its savepoint; the kept one is queued for the log.
        assert session.scalars(select(AuditEvent.details)).all() == [{"name": "first"}]


def test_a_configuration_write_through_a_plain_session_bumps_the_generation(
    sessions: sessionmaker[Session],
) -> None:
    install_session_listeners()
    install_session_listeners()  # start-up may run it more than once: still one bump per change
    with sessions() as session:
        before = read_generation(session)
        session.add(
            Issuer(
                **_issuer("plain", "https://plain.example"), created_at=CLOCK.now(), updated_at=CLOCK.now()
            )
        )
        session.commit()
    with sessions() as session:
        assert read_generation(session) == before + 1


def test_importing_the_broker_installs_no_session_listener() -> None:
    """Only start-up installs them: a module import has no effect on every session of the process."""
    probe = (
        "import app.models, app.factory, app.scheduler.runner, app.cli\n"
        "from sqlalchemy import event\n"
        "from sqlalchemy.orm import Session\n"
        "from app.config_snapshot.generation import bump_on_configuration_change as bump\n"
        "from app.db import install_session_listeners\n"
        "print(event.contains(Session, 'before_flush', bump))\n"
        "install_session_listeners()\n"
        "print(event.contains(Session, 'before_flush', bump))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "True"]
