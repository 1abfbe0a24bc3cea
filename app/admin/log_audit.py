"""What an auditor's `transom audit verify|prove` conclude from what the broker sent and what they kept.

Pure checks over ``app.tlog`` (standard library, and ``cryptography`` for the signature): no HTTP, no files,
and none of the server's packages, so the auditor's tools trust only the pinned verifier key
(docs/API.md, "Audit ledger — a verifiable log").
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app.tlog import merkle, note
from app.tlog.canonical import event_leaf


class LogMisbehaved(Exception):
    """The broker showed something a log that only grows cannot: a fork, a rewrite, a shrink, a bad proof."""


@dataclass(frozen=True)
class SignedCheckpoint:
    text: str  # the signed note, byte for byte as the broker served it
    checkpoint: note.Checkpoint

    @property
    def size(self) -> int:
        return self.checkpoint.size

    @property
    def root(self) -> str:
        return encode_hash(self.checkpoint.root_hash)


def open_checkpoint(text: str, verifier: note.Verifier) -> SignedCheckpoint:
    """The checkpoint in ``text`` once its signature by ``verifier`` checks out; NoteError otherwise."""
    checkpoint = note.parse_checkpoint(note.open_note(text, verifier))
    if checkpoint.origin != verifier.name:
        raise note.NoteError(
            f"the checkpoint's origin {checkpoint.origin!r} is not the key's name {verifier.name!r}"
        )
    return SignedCheckpoint(text, checkpoint)


def consistency_needed(old: SignedCheckpoint, new: SignedCheckpoint) -> bool:
    """Whether a consistency proof must show ``old`` is a prefix of ``new``; LogMisbehaved when no proof
    could (the log shrank, or one size has two roots)."""
    if old.size > new.size:
        raise LogMisbehaved(f"the log shrank from {old.size} to {new.size}")
    if old.size == new.size:
        if old.checkpoint.root_hash != new.checkpoint.root_hash:
            raise LogMisbehaved(f"two different roots for size {old.size}: {old.root} and {new.root}")
        return False
    if old.size == 0:
        if old.checkpoint.root_hash != merkle.EMPTY_ROOT:
            raise LogMisbehaved(f"the saved checkpoint of size 0 has a root ({old.root}) no empty log has")
        return False
    return True


def check_consistency(old: SignedCheckpoint, new: SignedCheckpoint, proof: Sequence[str]) -> None:
    """LogMisbehaved unless ``proof`` (base64 hashes) shows the tree of ``old`` is a prefix of ``new``'s."""
    try:
        merkle.verify_consistency(
            old.size, new.size, old.checkpoint.root_hash, new.checkpoint.root_hash, decode_hashes(proof)
        )
    except (merkle.ProofError, ValueError) as exc:
        raise LogMisbehaved(
            f"the log was rewritten or forked: the checkpoint of size {old.size} (root {old.root}) "
            f"is not a prefix of size {new.size} (root {new.root}) ({exc})"
        ) from None


def recomputed_leaf(event: Mapping[str, Any]) -> bytes:
    """The leaf hash of the event as the API returned it; LogMisbehaved when the broker's differs."""
    leaf = merkle.leaf_hash(event_leaf(event))
    claimed = event.get("leaf_hash")
    if not isinstance(claimed, str) or decode_hash(claimed) != leaf:
        raise LogMisbehaved(
            f"the event's content does not match its leaf: event {event.get('id')} hashes to "
            f"{encode_hash(leaf)}, the broker says {claimed}"
        )
    return leaf


def check_inclusion(index: int, leaf: bytes, checkpoint: SignedCheckpoint, proof: Mapping[str, Any]) -> None:
    """LogMisbehaved unless ``proof`` (the API's inclusion proof) puts ``leaf`` at ``index`` under the
    checkpoint's root."""
    if proof.get("index") != index or proof.get("size") != checkpoint.size:
        raise LogMisbehaved(
            f"the broker answered a proof for position {proof.get('index')} in size {proof.get('size')}, "
            f"not {index} in {checkpoint.size}"
        )
    try:
        hashes = decode_hashes(proof.get("hashes") or [])
        merkle.verify_inclusion(index, checkpoint.size, leaf, hashes, checkpoint.checkpoint.root_hash)
    except (merkle.ProofError, ValueError) as exc:
        raise LogMisbehaved(
            f"the event at position {index} is not in the checkpoint of size {checkpoint.size} "
            f"(root {checkpoint.root}): {exc}"
        ) from None


def encode_hash(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def decode_hash(text: str) -> bytes:
    try:
        value = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{text[:60]!r} is not a base64 hash") from None
    if len(value) != merkle.HASH_SIZE:
        raise ValueError(f"a hash is {len(value)} bytes, not {merkle.HASH_SIZE}")
    return value


def decode_hashes(texts: Sequence[Any]) -> list[bytes]:
    if not isinstance(texts, list) or not all(isinstance(text, str) for text in texts):
        raise ValueError("the proof's hashes are not a list of base64 strings")
    return [decode_hash(text) for text in texts]
