"""Signed checkpoints (C2SP tlog-checkpoint and signed-note): what the broker publishes opens with the pinned
verifier key, and anything tampered, signed by another key or malformed is refused with a clear reason."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from app.tlog.note import (
    Checkpoint,
    NoteError,
    format_checkpoint,
    key_id,
    open_note,
    parse_checkpoint,
    parse_verifier_key,
    signed_note,
    verifier_key,
)

ORIGIN = "transom/ledger"
ROOT = hashlib.sha256(b"some root").digest()
B64_ROOT = base64.b64encode(ROOT).decode()


def encoded_key(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


class LocalSigner:
    """Stands in for Vault's transit engine: a real Ed25519 key that signs the checkpoint body."""

    def __init__(self, name: str = ORIGIN) -> None:
        self.name = name
        self._key = Ed25519PrivateKey.generate()
        self.public_key = self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def sign(self, body: str) -> str:
        return signed_note(body, self.name, self.public_key, self._key.sign(body.encode()))

    @property
    def verifier_key(self) -> str:
        return verifier_key(self.name, self.public_key)


@pytest.fixture
def signer() -> LocalSigner:
    return LocalSigner()


def test_a_signed_checkpoint_opens_with_its_verifier_key(signer: LocalSigner) -> None:
    body = format_checkpoint(ORIGIN, 1041, ROOT)
    assert body == f"transom/ledger\n1041\n{base64.b64encode(ROOT).decode()}\n"

    note = signer.sign(body)
    assert note.startswith(body + "\n\u2014 transom/ledger ")
    assert note.endswith("\n")

    opened = open_note(note, parse_verifier_key(signer.verifier_key))
    assert opened == body
    assert parse_checkpoint(opened) == Checkpoint(origin=ORIGIN, size=1041, root_hash=ROOT)


def test_the_verifier_key_has_the_form_that_go_sumdb_note_reads(signer: LocalSigner) -> None:
    name, id_hex, key_b64 = signer.verifier_key.split("+", 2)
    expected_id = hashlib.sha256(ORIGIN.encode() + b"\n\x01" + signer.public_key).digest()[:4]
    assert (name, id_hex) == (ORIGIN, expected_id.hex())
    assert key_id(ORIGIN, signer.public_key) == expected_id
    assert base64.b64decode(key_b64) == b"\x01" + signer.public_key
    verifier = parse_verifier_key(signer.verifier_key)
    assert (verifier.name, verifier.key_id, verifier.public_key) == (ORIGIN, expected_id, signer.public_key)


def test_a_note_also_signed_by_others_opens(signer: LocalSigner) -> None:
    witness = LocalSigner("witness.example/w1")
    body = format_checkpoint(ORIGIN, 3, ROOT)
    witness_line = witness.sign(body)[len(body) + 1 :]
    note = signer.sign(body) + witness_line
    assert open_note(note, parse_verifier_key(signer.verifier_key)) == body
    assert open_note(note, parse_verifier_key(witness.verifier_key)) == body


def test_a_tampered_checkpoint_is_refused(signer: LocalSigner) -> None:
    note = signer.sign(format_checkpoint(ORIGIN, 10, ROOT))
    tampered = note.replace("\n10\n", "\n11\n")
    with pytest.raises(NoteError, match="does not verify"):
        open_note(tampered, parse_verifier_key(signer.verifier_key))


def test_a_note_signed_by_another_key_is_refused(signer: LocalSigner) -> None:
    impostor = LocalSigner()  # same name, different key: a different key id
    note = impostor.sign(format_checkpoint(ORIGIN, 10, ROOT))
    with pytest.raises(NoteError, match=r"no signature by transom/ledger\+[0-9a-f]{8}"):
        open_note(note, parse_verifier_key(signer.verifier_key))


def test_a_signature_under_another_name_is_refused(signer: LocalSigner) -> None:
    body = format_checkpoint(ORIGIN, 10, ROOT)
    note = signer.sign(body).replace("\u2014 transom/ledger ", "\u2014 transom/other ")
    with pytest.raises(NoteError, match="no signature by"):
        open_note(note, parse_verifier_key(signer.verifier_key))


def test_a_forged_signature_with_the_right_key_id_is_refused(signer: LocalSigner) -> None:
    body = format_checkpoint(ORIGIN, 10, ROOT)
    forged = signed_note(body, ORIGIN, signer.public_key, bytes(64))
    with pytest.raises(NoteError, match="does not verify"):
        open_note(forged, parse_verifier_key(signer.verifier_key))


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda note: note.replace("\n\n", "\n"), "no blank line"),
        (lambda note: note[:-1], "do not end with a newline"),
        (lambda note: note.replace("\u2014", "-"), "does not start with an em dash"),
        (lambda note: note.replace("\u2014 transom/ledger ", "\u2014 transom/ledger x"), "base64"),
        (lambda note: note + "\u2014 transom/ledger AAAA\n", "too short"),
        (lambda note: note.replace("\n1\n", "\n1\r\n"), "control character"),
        (lambda note: note.replace("\u2014 transom/ledger ", "\u2014  "), "key name"),
    ],
)
def test_malformed_notes_are_refused(signer: LocalSigner, mangle: Callable[[str], str], reason: str) -> None:
    note = signer.sign(format_checkpoint(ORIGIN, 1, ROOT))
    with pytest.raises(NoteError, match=reason):
        open_note(mangle(note), parse_verifier_key(signer.verifier_key))


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("transom/ledger+1a2b3c4d", "expected <name>"),
        ("transom/ledger+1a2b3c+AQ==", "8 hex digits"),
        ("transom/ledger+1a2b3c4d+not base64", "base64"),
        ("+1a2b3c4d+AQ==", "key name"),
        ("transom/ledger+1a2b3c4d+" + encoded_key(b"\x02" + bytes(32)), "not Ed25519"),
        ("transom/ledger+1a2b3c4d+" + encoded_key(b"\x01" + bytes(31)), "31 bytes"),
        ("transom/ledger+00000000+" + encoded_key(b"\x01" + bytes(32)), "does not match"),
    ],
)
def test_malformed_verifier_keys_are_refused(text: str, reason: str) -> None:
    with pytest.raises(NoteError, match=reason):
        parse_verifier_key(text)


def test_a_key_whose_base64_contains_a_plus_still_parses() -> None:
    public_key = bytes([0xFB] * 32)  # encodes with "+" characters
    text = verifier_key(ORIGIN, public_key)
    assert "+" in text.split("+", 2)[2]
    assert parse_verifier_key(text).public_key == public_key


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("transom/ledger\n1\n", "needs an origin"),
        ("transom/ledger\n1\n" + base64.b64encode(ROOT).decode(), "newline"),
        ("transom/ledger\n01\n" + base64.b64encode(ROOT).decode() + "\n", "not a decimal"),
        ("transom/ledger\n-1\n" + base64.b64encode(ROOT).decode() + "\n", "not a decimal"),
        ("transom/ledger\n1\n" + base64.b64encode(ROOT[:31]).decode() + "\n", "31 bytes"),
        ("transom/ledger\n1\n" + base64.b64encode(ROOT).decode().rstrip("=") + "\n", "base64"),
        ("\n1\n" + base64.b64encode(ROOT).decode() + "\n", "empty line"),
    ],
)
def test_malformed_checkpoints_are_refused(body: str, reason: str) -> None:
    with pytest.raises(NoteError, match=reason):
        parse_checkpoint(body)


def test_checkpoint_extension_lines_are_allowed() -> None:
    body = format_checkpoint(ORIGIN, 7, ROOT) + "timestamp 1700000000\n"
    assert parse_checkpoint(body) == Checkpoint(ORIGIN, 7, ROOT)


def test_only_a_note_that_can_be_opened_is_signed(signer: LocalSigner) -> None:
    with pytest.raises(NoteError, match="end with a newline"):
        signed_note("transom/ledger\n1", ORIGIN, signer.public_key, bytes(64))
    with pytest.raises(NoteError, match="blank line"):
        signed_note("transom/ledger\n\n1\n", ORIGIN, signer.public_key, bytes(64))
    with pytest.raises(NoteError, match="64 bytes"):
        signed_note("transom/ledger\n", ORIGIN, signer.public_key, bytes(63))
    with pytest.raises(NoteError, match="one non-empty line"):
        format_checkpoint("transom\nledger", 1, ROOT)
