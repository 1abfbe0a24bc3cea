"""The verifiable log against the real databases and OpenBao's transit engine: concurrent writers and
competing sequencers integrate every event exactly once; tampering is found; edits are refused."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, delete, func, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from app.audit import tree
from app.audit.ledger import Actor, Ledger
from app.audit.models import AuditEvent, LedgerCheckpoint, LedgerHash, LedgerLeaf, LedgerPending
from app.audit.sequencer import integrate_batch, publish_checkpoint
from app.audit.signer import TransitSigner
from app.audit.verification import Verification, verify_log
from app.clock import SystemClock
from app.db import make_engine, make_session_factory, transaction
from app.tlog import merkle, note
from app.vault.hvac_backend import HvacBackend
from tests.integration.audit.ledger_fill import fill, integrate
from tests.support.openbao import OpenBaoServer

ORIGIN = "transom/test-ledger"
WRITERS = 16
GRANTS = 1000


@pytest.fixture
def signer(vault: OpenBaoServer) -> Iterator[TransitSigner]:
    with HvacBackend(vault.addr, token=vault.root_token) as backend:
        yield TransitSigner(backend.call)


def _verifier(signer: TransitSigner) -> note.Verifier:
    public = signer.signing_key().public_key
    return note.Verifier(ORIGIN, note.key_id(ORIGIN, public), public)


def _publish(engine: Engine, signer: TransitSigner) -> LedgerCheckpoint:
    checkpoint = publish_checkpoint(
        make_session_factory(engine), signer, SystemClock(), ORIGIN, interval=_NOW
    )
    assert checkpoint is not None
    return checkpoint


def _verify(engine: Engine, signer: TransitSigner) -> Verification:
    with make_session_factory(engine)() as session:
        return verify_log(session, _verifier(signer))


_NOW = timedelta(0)  # publish whenever the tree grew


# --- on both databases -----------------------------------------------------------------------------------


def test_events_are_integrated_and_the_signed_log_verifies(database_url: str, signer: TransitSigner) -> None:
    engine = make_engine(database_url)
    fill(engine, 300, chunk=100)
    assert integrate(engine, batch=128) == 300
    checkpoint = _publish(engine, signer)
    assert checkpoint.size == 300
    result = _verify(engine, signer)
    assert (result.ok, result.size, result.checked, result.pending) == (True, 300, 300, 0)
    body = note.parse_checkpoint(note.open_note(checkpoint.note, _verifier(signer)))
    assert (body.origin, body.size, body.root_hash) == (ORIGIN, 300, checkpoint.root_hash)
    engine.dispose()


def test_an_event_is_pending_until_the_sequencer_runs_and_then_has_a_position(database_url: str) -> None:
    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    with transaction(sessions) as session:
        event = Ledger(session, SystemClock()).append("policy.created", actor=Actor("admin", "alice"))
        session.flush()
        event_id = event.id
    with sessions() as session:
        assert session.scalars(select(LedgerPending.event_id)).all() == [event_id]
        assert tree.leaf_of_event(session, event_id) is None
    assert integrate_batch(sessions, SystemClock()).integrated == 1
    with sessions() as session:
        assert session.scalar(select(func.count(LedgerPending.event_id))) == 0
        leaf = tree.leaf_of_event(session, event_id)
        assert leaf is not None and leaf.log_index == 0
    assert integrate_batch(sessions, SystemClock()).integrated == 0  # nothing twice
    engine.dispose()


# --- PostgreSQL: races, tampering, refused edits -----------------------------------------------------------


@pytest.fixture
def pg_engine(postgres_url: str) -> Iterator[Engine]:
    engine = make_engine(postgres_url, pool_size=WRITERS + 4)
    yield engine
    engine.dispose()


@pytest.mark.postgres
def test_concurrent_grants_and_two_sequencers_integrate_every_event_exactly_once(
    pg_engine: Engine, signer: TransitSigner
) -> None:
    sessions = make_session_factory(pg_engine)
    clock = SystemClock()
    done = threading.Event()
    checkpoints: list[LedgerCheckpoint] = []

    def sequencer() -> None:
        while True:
            finished = done.is_set()  # read before the batch: a last pass after the writers stopped
            batch = integrate_batch(sessions, clock, limit=50)
            published = publish_checkpoint(sessions, signer, clock, ORIGIN, interval=_NOW)
            if published is not None:
                checkpoints.append(published)
            if finished and not batch.pending_left and batch.integrated == 0:
                return

    def grant(n: int) -> None:
        with transaction(sessions) as session:
            Ledger(session, clock).append(
                "lease.granted",
                actor=Actor("ci", f"acme/payments@run-{n}"),
                lease_id=f"lse_{n:06d}",
                repository="acme/payments",
                decision="allow",
                details={"identity": {"pipeline_id": str(n)}},
            )

    with ThreadPoolExecutor(2) as sequencers:
        running = [sequencers.submit(sequencer) for _ in range(2)]
        with ThreadPoolExecutor(WRITERS) as writers:
            list(writers.map(grant, range(GRANTS)))
        done.set()
        for future in running:
            future.result()
    integrate(pg_engine)
    last = publish_checkpoint(sessions, signer, clock, ORIGIN, interval=_NOW)
    checkpoints.extend([last] if last is not None else [])
    assert max(c.size for c in checkpoints) == GRANTS

    with sessions() as session:
        positions = session.scalars(select(LedgerLeaf.log_index).order_by(LedgerLeaf.log_index)).all()
        integrated = session.scalars(select(LedgerLeaf.event_id)).all()
        stored = session.scalars(select(AuditEvent.id)).all()
        assert positions == list(range(GRANTS))  # gapless
        assert sorted(integrated) == sorted(stored)  # every event, once (event_id is unique)
        read = tree.hash_reader(session)
        ordered = sorted(checkpoints, key=lambda c: c.size)
        for older, newer in itertools.pairwise(ordered):
            proof = merkle.consistency_proof(older.size, newer.size, read)
            merkle.verify_consistency(older.size, newer.size, older.root_hash, newer.root_hash, proof)
    assert _verify(pg_engine, signer).ok


def _superuser(url: str) -> psycopg.Connection[Any]:
    """A connection outside the application's, as a DBA (or an attacker with DBA rights) would have."""
    parsed = make_url(url)
    return psycopg.connect(
        host=parsed.host, port=parsed.port, user=parsed.username, dbname=parsed.database, autocommit=True
    )


def _tamper(url: str, *statements: str) -> None:
    tables = ("audit_events", "ledger_leaves", "ledger_hashes", "ledger_checkpoints")
    with _superuser(url) as conn:
        for table in tables:
            conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        try:
            for statement in statements:
                conn.execute(statement)
        finally:
            for table in tables:
                conn.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")


def _event_at(engine: Engine, index: int) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(LedgerLeaf.event_id).where(LedgerLeaf.log_index == index)))


@pytest.fixture
def signed_log(pg_engine: Engine, postgres_url: str, signer: TransitSigner) -> Engine:
    fill(pg_engine, 300, chunk=100)
    integrate(pg_engine)
    _publish(pg_engine, signer)
    assert _verify(pg_engine, signer).ok
    return pg_engine


# (column, SQL expression that changes one byte of it)
TAMPERINGS = [
    ("action", "overlay(action placing 'x' from 1 for 1)"),
    ("actor_id", "overlay(actor_id placing 'X' from 3 for 1)"),
    ("repository", "overlay(repository placing 'b' from 1 for 1)"),
    ("details", "overlay(details::text placing 'X' from 3 for 1)::json"),
    ("at", "at + interval '1 second'"),
]


@pytest.mark.postgres
@pytest.mark.parametrize(("column", "expression"), TAMPERINGS, ids=[t[0] for t in TAMPERINGS])
@pytest.mark.parametrize("victim", [0, 137, 299])
def test_one_changed_byte_of_any_event_is_found_at_its_position(
    signed_log: Engine, postgres_url: str, signer: TransitSigner, column: str, expression: str, victim: int
) -> None:
    event_id = _event_at(signed_log, victim)
    _tamper(postgres_url, f"UPDATE audit_events SET {column} = {expression} WHERE id = {event_id}")
    result = _verify(signed_log, signer)
    assert not result.ok
    assert result.first_bad_index == victim
    assert f"position {victim}" in (result.reason or "")


@pytest.mark.postgres
def test_a_deleted_event_is_found(signed_log: Engine, postgres_url: str, signer: TransitSigner) -> None:
    _tamper(postgres_url, f"DELETE FROM audit_events WHERE id = {_event_at(signed_log, 42)}")
    result = _verify(signed_log, signer)
    assert (result.ok, result.first_bad_index) == (False, 42)
    assert "missing" in (result.reason or "")


@pytest.mark.postgres
def test_two_swapped_events_are_found_at_the_first(
    signed_log: Engine, postgres_url: str, signer: TransitSigner
) -> None:
    first, second = _event_at(signed_log, 10), _event_at(signed_log, 20)
    _tamper(
        postgres_url,
        "UPDATE ledger_leaves SET event_id = -1 WHERE log_index = 10",
        f"UPDATE ledger_leaves SET event_id = {first} WHERE log_index = 20",
        f"UPDATE ledger_leaves SET event_id = {second} WHERE log_index = 10",
    )
    result = _verify(signed_log, signer)
    assert (result.ok, result.first_bad_index) == (False, 10)


@pytest.mark.postgres
def test_a_tree_rebuilt_consistently_over_a_changed_event_fails_against_the_signed_root(
    signed_log: Engine, postgres_url: str, signer: TransitSigner
) -> None:
    """The attacker changes an event, then recomputes every leaf and stored hash: the tables agree with each
    other, but not with the checkpoint that Vault signed."""
    _tamper(
        postgres_url,
        f"UPDATE audit_events SET action = 'lease.nothing' WHERE id = {_event_at(signed_log, 5)}",
        "DELETE FROM ledger_leaves",
        "DELETE FROM ledger_hashes",
        "INSERT INTO ledger_pending (event_id) SELECT id FROM audit_events",
    )
    integrate(signed_log)
    result = _verify(signed_log, signer)
    assert not result.ok
    assert result.first_bad_index is None
    assert "signed checkpoint's root" in (result.reason or "")


@pytest.mark.postgres
def test_a_forged_checkpoint_fails_its_signature(
    signed_log: Engine, postgres_url: str, signer: TransitSigner
) -> None:
    _tamper(postgres_url, "UPDATE ledger_checkpoints SET note = replace(note, E'\\n300\\n', E'\\n299\\n')")
    result = _verify(signed_log, signer)
    assert not result.ok and result.first_bad_index is None
    assert "signature" in (result.reason or "")


@pytest.mark.postgres
def test_the_application_connection_cannot_update_or_delete_the_log(signed_log: Engine) -> None:
    sessions = make_session_factory(signed_log)
    for statement in (
        update(AuditEvent).where(AuditEvent.id == 5).values(action="lease.nothing"),
        delete(AuditEvent).where(AuditEvent.id == 10),
        update(LedgerLeaf).where(LedgerLeaf.log_index == 3).values(event_id=4),
        delete(LedgerLeaf).where(LedgerLeaf.log_index == 299),
        update(LedgerHash).where(LedgerHash.id == 0).values(hash=b"\0" * 32),
        delete(LedgerCheckpoint),
        text("TRUNCATE ledger_hashes"),
        text("TRUNCATE audit_events"),
    ):
        with sessions() as session, pytest.raises(DBAPIError, match="append-only"):
            session.execute(statement)
            session.commit()
