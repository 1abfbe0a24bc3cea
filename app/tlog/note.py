"""C2SP checkpoints (c2sp.org/tlog-checkpoint) and signed notes (c2sp.org/signed-note) with Ed25519.

What this writes, Go's ``golang.org/x/mod/sumdb/note`` opens, and what it accepts is what that package accepts
(docs/API.md, "Audit ledger"). Signing happens in Vault; this module only lays out and checks the text.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from app.tlog.merkle import HASH_SIZE

ALGORITHM_ED25519 = 0x01
KEY_ID_SIZE = 4
ED25519_KEY_SIZE = 32
ED25519_SIGNATURE_SIZE = 64
SIGNATURE_PREFIX = "\u2014 "  # an em dash and a space start every signature line
MAX_SIGNATURES = 100  # Go's note.Open refuses more

_DECIMAL = re.compile(r"0|[1-9][0-9]*")
# Go's note package refuses any ASCII control character but the newline, anywhere in a note.
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")


class NoteError(ValueError):
    """A checkpoint, note or verifier key is malformed, or a note is not signed by the expected key."""


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root_hash: bytes


@dataclass(frozen=True)
class Verifier:
    name: str
    key_id: bytes
    public_key: bytes

    def __str__(self) -> str:
        return f"{self.name}+{self.key_id.hex()}"


# --- checkpoints --------------------------------------------------------------------------------------------


def format_checkpoint(origin: str, size: int, root_hash: bytes) -> str:
    if not origin or "\n" in origin or _CONTROL.search(origin):
        raise NoteError("checkpoint origin must be one non-empty line")
    if size < 0:
        raise NoteError("checkpoint size must not be negative")
    if len(root_hash) != HASH_SIZE:
        raise NoteError(f"checkpoint root hash must be {HASH_SIZE} bytes")
    return f"{origin}\n{size}\n{_b64(root_hash)}\n"


def parse_checkpoint(body: str) -> Checkpoint:
    """The origin, size and root of a checkpoint body; extension lines after the root are allowed."""
    if not body.endswith("\n"):
        raise NoteError("malformed checkpoint: it does not end with a newline")
    lines = body[:-1].split("\n")
    if len(lines) < 3:
        raise NoteError("malformed checkpoint: it needs an origin, a size and a root hash line")
    if any(not line for line in lines):
        raise NoteError("malformed checkpoint: empty line")
    if _CONTROL.search(body):
        raise NoteError("malformed checkpoint: control character")
    origin, size_line, root_line = lines[:3]
    if not _DECIMAL.fullmatch(size_line):
        raise NoteError(f"malformed checkpoint: size {size_line!r} is not a decimal number")
    root_hash = _b64decode(root_line, "checkpoint root hash")
    if len(root_hash) != HASH_SIZE:
        raise NoteError(f"malformed checkpoint: root hash is {len(root_hash)} bytes, not {HASH_SIZE}")
    return Checkpoint(origin=origin, size=int(size_line), root_hash=root_hash)


# --- keys ---------------------------------------------------------------------------------------------------


def key_id(name: str, public_key: bytes) -> bytes:
    """The 4-byte id of an Ed25519 key: SHA-256(name || "\\n" || 0x01 || public key), truncated."""
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([ALGORITHM_ED25519]) + public_key).digest()
    return digest[:KEY_ID_SIZE]


def verifier_key(name: str, public_key: bytes) -> str:
    """The verifier key text that ``note.NewVerifier`` reads: ``<name>+<hex key id>+<base64 key>``."""
    _check_name(name)
    if len(public_key) != ED25519_KEY_SIZE:
        raise NoteError(f"an Ed25519 public key is {ED25519_KEY_SIZE} bytes, not {len(public_key)}")
    return f"{name}+{key_id(name, public_key).hex()}+{_b64(bytes([ALGORITHM_ED25519]) + public_key)}"


def parse_verifier_key(text: str) -> Verifier:
    parts = text.strip().split("+", 2)  # the base64 key may itself contain "+"
    if len(parts) != 3:
        raise NoteError("malformed verifier key: expected <name>+<key id>+<key>")
    name, id_hex, key_b64 = parts
    _check_name(name)
    if not re.fullmatch(r"[0-9a-fA-F]{8}", id_hex):
        raise NoteError("malformed verifier key: the key id is not 8 hex digits")
    encoded_key = _b64decode(key_b64, "verifier key")
    if not encoded_key:
        raise NoteError("malformed verifier key: empty key")
    if encoded_key[0] != ALGORITHM_ED25519:
        raise NoteError(f"verifier key algorithm {encoded_key[0]} is not Ed25519 ({ALGORITHM_ED25519})")
    public_key = encoded_key[1:]
    if len(public_key) != ED25519_KEY_SIZE:
        raise NoteError(f"verifier key is {len(public_key)} bytes, not {ED25519_KEY_SIZE}")
    expected_id = key_id(name, public_key)
    if bytes.fromhex(id_hex) != expected_id:
        raise NoteError(f"verifier key id {id_hex} does not match its name and key ({expected_id.hex()})")
    return Verifier(name=name, key_id=expected_id, public_key=public_key)


# --- signed notes -------------------------------------------------------------------------------------------


def signed_note(body: str, name: str, public_key: bytes, signature: bytes) -> str:
    """`body` followed by a blank line and the signature line of key `name` (`signature` is raw Ed25519)."""
    _check_body(body)
    _check_name(name)
    if len(signature) != ED25519_SIGNATURE_SIZE:
        raise NoteError(f"an Ed25519 signature is {ED25519_SIGNATURE_SIZE} bytes, not {len(signature)}")
    return f"{body}\n{SIGNATURE_PREFIX}{name} {_b64(key_id(name, public_key) + signature)}\n"


def open_note(note: str, verifier: Verifier) -> str:
    """The body of `note` once the signature of `verifier` (name and key id) checks out over it."""
    if _CONTROL.search(note):
        raise NoteError("malformed note: control character")
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("malformed note: no blank line before the signatures")
    body, signature_block = note[: split + 1], note[split + 2 :]
    if not signature_block.endswith("\n"):
        raise NoteError("malformed note: the signatures do not end with a newline")
    lines = signature_block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"malformed note: more than {MAX_SIGNATURES} signatures")
    ours: bytes | None = None
    for line in lines:
        name, key_hash, signature = _parse_signature_line(line)
        if ours is None and name == verifier.name and key_hash == verifier.key_id:
            ours = signature
    if ours is None:
        raise NoteError(f"note has no signature by {verifier}")
    if not _ed25519_verifies(verifier.public_key, ours, body.encode()):
        raise NoteError(f"signature by {verifier} does not verify over the note")
    return body


def _parse_signature_line(line: str) -> tuple[str, bytes, bytes]:
    if not line.startswith(SIGNATURE_PREFIX):
        raise NoteError(f"malformed note: signature line {line[:40]!r} does not start with an em dash")
    name, _, encoded = line[len(SIGNATURE_PREFIX) :].partition(" ")
    _check_name(name)
    decoded = _b64decode(encoded, "signature")
    if len(decoded) <= KEY_ID_SIZE:
        raise NoteError("malformed note: signature too short")
    return name, decoded[:KEY_ID_SIZE], decoded[KEY_ID_SIZE:]


def _ed25519_verifies(public_key: bytes, signature: bytes, message: bytes) -> bool:
    # Imported here so that importing app.tlog costs nothing beyond the standard library.
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except InvalidSignature:
        return False
    return True


# --- shared checks ------------------------------------------------------------------------------------------


def _check_name(name: str) -> None:
    # Go's note.isValidName: non-empty, no white space, no "+".
    if not name or "+" in name or any(char.isspace() for char in name):
        raise NoteError(f"key name {name!r} must be non-empty, without spaces or '+'")


def _check_body(body: str) -> None:
    if not body.endswith("\n"):
        raise NoteError("note body must end with a newline")
    # A blank line would end the body early when the note is opened.
    if "\n\n" in body or body.startswith("\n"):
        raise NoteError("note body must not contain a blank line")
    if _CONTROL.search(body):
        raise NoteError("note body must not contain control characters")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64decode(text: str, what: str) -> bytes:
    try:
        decoded = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise NoteError(f"malformed {what}: not standard base64") from None
    if _b64(decoded) != text:
        raise NoteError(f"malformed {what}: not canonical base64")
    return decoded
