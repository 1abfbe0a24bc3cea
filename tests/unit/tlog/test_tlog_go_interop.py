"""Go's sumdb (golang.org/x/mod/sumdb/note and tlog), which shares no code with app/tlog, accepts the
checkpoints, inclusion proofs and consistency proofs that Transom makes, and refuses tampered ones: auditors
can check the ledger with tools that are not ours (docs/API.md, "Audit ledger").

Without Go these tests skip, except in CI (TRANSOM_REQUIRE_POSTGRES=1), where they fail."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from app.tlog.canonical import event_leaf
from app.tlog.merkle import (
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    stored_hashes_for_leaf,
    tree_hash,
)
from app.tlog.note import format_checkpoint, signed_note, verifier_key
from tests.support.go_verifier import GoVerifier, go_verifier_or_skip

ORIGIN = "transom/ledger"
SIZE = 1000


@pytest.fixture(scope="module")
def go() -> GoVerifier:
    return go_verifier_or_skip()


class Ledger:
    """A log of audit events in the stored-hash layout, with a local Ed25519 key standing in for Vault."""

    def __init__(self, size: int) -> None:
        self.hashes: list[bytes] = []
        self.leaves: list[bytes] = []
        for index in range(size):
            event = {"id": index + 1, "action": "lease.granted", "secret": f"db-{index}", "details": {}}
            leaf = leaf_hash(event_leaf(event))
            self.hashes.extend(stored_hashes_for_leaf(index, leaf, self.read))
            self.leaves.append(leaf)
        self._key = Ed25519PrivateKey.generate()
        self.public_key = self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.verifier_key = verifier_key(ORIGIN, self.public_key)

    def read(self, indexes: Sequence[int]) -> list[bytes]:
        return [self.hashes[i] for i in indexes]

    def root(self, size: int) -> bytes:
        return tree_hash(size, self.read)

    def checkpoint(self, size: int, root: bytes | None = None) -> str:
        body = format_checkpoint(ORIGIN, size, self.root(size) if root is None else root)
        return signed_note(body, ORIGIN, self.public_key, self._key.sign(body.encode()))

    def inclusion(self, index: int, size: int) -> dict[str, Any]:
        return {
            "index": index,
            "leaf_hash": b64(self.leaves[index]),
            "hashes": b64s(inclusion_proof(index, size, self.read)),
        }

    def consistency(self, old: int, size: int) -> dict[str, Any]:
        return {
            "size": old,
            "root_hash": b64(self.root(old)),
            "hashes": b64s(consistency_proof(old, size, self.read)),
        }


def b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


def b64s(values: Sequence[bytes]) -> list[str]:
    return [b64(v) for v in values]


@pytest.fixture(scope="module")
def ledger() -> Ledger:
    return Ledger(SIZE)


def test_go_opens_the_checkpoint_and_accepts_every_kind_of_proof(go: GoVerifier, ledger: Ledger) -> None:
    size = SIZE - 3  # not a power of two
    answer = go.check(
        {
            "verifier_key": ledger.verifier_key,
            "note": ledger.checkpoint(size),
            "inclusion": [ledger.inclusion(i, size) for i in (0, 1, 511, 512, 700, size - 2, size - 1)],
            "consistency": [
                ledger.consistency(old, size) for old in (1, 2, 7, 256, 512, 513, size - 1, size)
            ],
        }
    )
    assert answer == {
        "ok": True,
        "checkpoint": {"origin": ORIGIN, "size": size, "root_hash": b64(ledger.root(size))},
    }


def test_go_refuses_a_checkpoint_whose_body_was_altered(go: GoVerifier, ledger: Ledger) -> None:
    note = ledger.checkpoint(SIZE).replace(f"\n{SIZE}\n", f"\n{SIZE + 1}\n")
    answer = go.check({"verifier_key": ledger.verifier_key, "note": note})
    assert answer["ok"] is False
    assert "invalid signature" in answer["error"]


def test_go_refuses_a_checkpoint_signed_by_another_key(go: GoVerifier, ledger: Ledger) -> None:
    other = Ledger(1)
    answer = go.check({"verifier_key": other.verifier_key, "note": ledger.checkpoint(SIZE)})
    assert answer["ok"] is False
    assert "note:" in answer["error"]


def test_go_refuses_proofs_against_a_signed_but_wrong_root(go: GoVerifier, ledger: Ledger) -> None:
    wrong_root = ledger.root(SIZE - 1)
    answer = go.check(
        {
            "verifier_key": ledger.verifier_key,
            "note": ledger.checkpoint(SIZE, root=wrong_root),
            "inclusion": [ledger.inclusion(5, SIZE)],
        }
    )
    assert answer["ok"] is False
    assert "inclusion of leaf 5" in answer["error"]


@pytest.mark.parametrize("kind", ["inclusion", "consistency"])
def test_go_refuses_a_tampered_proof(go: GoVerifier, ledger: Ledger, kind: str) -> None:
    proof = ledger.inclusion(300, SIZE) if kind == "inclusion" else ledger.consistency(300, SIZE)
    honest = go.check({"verifier_key": ledger.verifier_key, "note": ledger.checkpoint(SIZE), kind: [proof]})
    assert honest["ok"] is True

    tampered_hash = bytearray(base64.b64decode(proof["hashes"][1]))
    tampered_hash[0] ^= 1
    proof["hashes"][1] = b64(bytes(tampered_hash))
    answer = go.check({"verifier_key": ledger.verifier_key, "note": ledger.checkpoint(SIZE), kind: [proof]})
    assert answer["ok"] is False
    assert "invalid transparency proof" in answer["error"]
