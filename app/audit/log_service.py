"""What the log's routes answer (docs/API.md, "Audit ledger"): checkpoints, the key, proofs, verification.
Each rule about sizes and positions lives here; the views only parse and render."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit import tree
from app.audit.ledger import encode_hash
from app.audit.models import AuditEvent, LedgerCheckpoint
from app.audit.signer import LedgerSigner
from app.audit.verification import verify_log
from app.errors import BadRequest, Conflict, NotFound, ServiceUnavailable
from app.instants import format_instant
from app.schemas import decode_id_cursor, encode_cursor
from app.tlog import note
from app.vault.port import VaultError


class LogService:
    def __init__(self, session: Session, signer: LedgerSigner, origin: str) -> None:
        self._session = session
        self._signer = signer
        self._origin = origin

    # -- checkpoints and the key ---------------------------------------------------------------------------

    def checkpoint_note(self, size: int | None) -> str:
        if size is None:
            found = tree.latest_checkpoint(self._session)
            if found is None:
                raise NotFound("no checkpoint has been published yet")
            return found.note
        found = tree.checkpoint_of_size(self._session, size)
        if found is None:
            raise NotFound(f"no checkpoint of size {size} was published")
        return found.note

    def checkpoints_page(self, limit: int, cursor: str | None) -> dict[str, Any]:
        query = select(LedgerCheckpoint).order_by(LedgerCheckpoint.size.desc()).limit(limit + 1)
        if cursor:
            query = query.where(LedgerCheckpoint.size < decode_id_cursor(cursor))
        rows = self._session.scalars(query).all()
        page, more = rows[:limit], len(rows) > limit
        return {
            "items": [
                {"size": c.size, "root_hash": encode_hash(c.root_hash), "at": format_instant(c.published_at)}
                for c in page
            ],
            "next_cursor": encode_cursor([page[-1].size]) if more and page else None,
        }

    def key(self) -> dict[str, Any]:
        public = self._public_key()
        return {
            "origin": self._origin,
            "algorithm": "ed25519",
            "public_key": encode_hash(public),
            "verifier_key": note.verifier_key(self._origin, public),
        }

    def verifier(self) -> note.Verifier:
        public = self._public_key()
        return note.Verifier(self._origin, note.key_id(self._origin, public), public)

    def _public_key(self) -> bytes:
        try:
            return self._signer.signing_key().public_key
        except VaultError as exc:
            raise ServiceUnavailable(
                f"the log's signing key could not be read from Vault ({exc.error_class}); "
                "is transit/keys/transom-ledger there and readable by the broker?"
            ) from None

    # -- proofs --------------------------------------------------------------------------------------------

    def inclusion(self, *, index: int | None, size: int | None, event: int | None) -> dict[str, Any]:
        if (index is None) == (event is None):
            raise BadRequest(
                "Give either index or event.", errors={"index": ["give either index or event, not both"]}
            )
        if event is not None:
            index = self._index_of_event(event)
        assert index is not None
        integrated = tree.integrated_size(self._session)
        if size is None:
            latest = tree.latest_checkpoint(self._session)
            if latest is None or latest.size <= index:
                raise Conflict(
                    f"position {index} is not in a published checkpoint yet; try again in a second"
                )
            size = latest.size
        if not index < size <= integrated:
            raise BadRequest(
                f"need index < size <= {integrated} (the log's size)",
                errors={"size": [f"index {index} and size {size}: need index < size <= {integrated}"]},
            )
        proof = tree.inclusion_proof(self._session, index, size)
        return {
            "index": index,
            "size": size,
            "leaf_hash": encode_hash(proof.leaf_hash),
            "hashes": [encode_hash(h) for h in proof.hashes],
        }

    def _index_of_event(self, event_id: int) -> int:
        leaf = tree.leaf_of_event(self._session, event_id)
        if leaf is not None:
            return leaf.log_index
        if self._session.get(AuditEvent, event_id) is None:
            raise NotFound(f"no event with id {event_id}")
        raise Conflict(f"event {event_id} is not integrated into the log yet; try again in a second")

    def consistency(self, old: int, new: int) -> dict[str, Any]:
        integrated = tree.integrated_size(self._session)
        if not 0 < old <= new <= integrated:
            raise BadRequest(
                f"need 0 < from <= to <= {integrated} (the log's size)",
                errors={"from": [f"from {old} and to {new}: need 0 < from <= to <= {integrated}"]},
            )
        hashes = tree.consistency_proof(self._session, old, new)
        return {"from": old, "to": new, "hashes": [encode_hash(h) for h in hashes]}

    # -- verification --------------------------------------------------------------------------------------

    def verify(self) -> dict[str, Any]:
        return verify_log(self._session, self.verifier()).to_dict()
