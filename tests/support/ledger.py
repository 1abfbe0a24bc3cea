"""The suite's way to bring the audit log up to date and check it, without waiting for a scheduler."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from app.audit.log_service import LogService
from app.audit.sequencer import integrate_batch, publish_checkpoint
from app.audit.signer import LedgerSigner
from app.audit.verification import Verification, verify_log
from app.clock import SystemClock

ORIGIN = "transom/ledger"  # the default TRANSOM_LEDGER_ORIGIN


def integrate_all(sessions: sessionmaker[Session]) -> int:
    """Run the sequencer until nothing is pending; the log's size."""
    while True:
        batch = integrate_batch(sessions, SystemClock())
        if not batch.pending_left:
            return batch.size


def settle_and_verify(
    sessions: sessionmaker[Session], signer: LedgerSigner, origin: str = ORIGIN
) -> Verification:
    """Integrate every pending event, publish a checkpoint of it, and verify the whole log."""
    integrate_all(sessions)
    publish_checkpoint(sessions, signer, SystemClock(), origin, interval=timedelta(0))
    with sessions() as session:
        return verify_log(session, LogService(session, signer, origin).verifier())
