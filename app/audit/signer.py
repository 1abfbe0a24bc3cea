"""Signing checkpoints with Vault's transit engine: the log's Ed25519 key lives in Vault and never leaves it.

The deployer creates the key once (README, "The audit log's signing key"); `transom dev` does it itself. The
broker's Vault policy allows exactly reading the key's public half and signing with it
(``config/vault/transom-broker.hcl``).
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from app.vault.port import VaultUnavailable

TRANSIT_MOUNT = "transit"
LEDGER_KEY = "transom-ledger"

VaultCall = Callable[..., dict[str, Any]]  # HvacBackend.call: (method, path, body, *, label)


@dataclass(frozen=True, slots=True)
class SigningKey:
    version: int
    public_key: bytes  # raw Ed25519, 32 bytes


class LedgerSigner(Protocol):
    def signing_key(self) -> SigningKey: ...

    def sign(self, message: bytes, key: SigningKey) -> bytes: ...


class TransitSigner:
    """``LedgerSigner`` over Vault's transit engine. The key's latest version signs; its public half is read
    once and again after a failed signature (the key may have been rotated)."""

    def __init__(self, call: VaultCall, *, mount: str = TRANSIT_MOUNT, key: str = LEDGER_KEY) -> None:
        self._call = call
        self._mount = mount
        self._key = key
        self._cached: SigningKey | None = None
        self._lock = threading.Lock()

    def signing_key(self) -> SigningKey:
        with self._lock:
            if self._cached is None:
                self._cached = self._read_key()
            return self._cached

    def forget_key(self) -> None:
        with self._lock:
            self._cached = None

    def sign(self, message: bytes, key: SigningKey) -> bytes:
        body = self._call(
            "POST",
            f"{self._mount}/sign/{self._key}",
            {"input": base64.b64encode(message).decode("ascii"), "key_version": key.version},
            label=f"{self._mount}/sign",
        )
        signature = _data(body).get("signature")
        prefix = f"vault:v{key.version}:"
        if not (isinstance(signature, str) and signature.startswith(prefix)):
            raise VaultUnavailable("bad_response", "Vault's transit signature is not in the expected form")
        raw = _b64(signature[len(prefix) :])
        if len(raw) != 64:
            raise VaultUnavailable("bad_response", "Vault's transit signature is not an Ed25519 signature")
        return raw

    def _read_key(self) -> SigningKey:
        body = _data(self._call("GET", f"{self._mount}/keys/{self._key}", label=f"{self._mount}/keys"))
        if body.get("type") != "ed25519":
            raise VaultUnavailable("bad_key", f"the transit key {self._key!r} is not an ed25519 key")
        version = body.get("latest_version")
        keys = body.get("keys")
        entry = keys.get(str(version)) if isinstance(keys, dict) else None
        public = entry.get("public_key") if isinstance(entry, dict) else None
        if not (isinstance(version, int) and isinstance(public, str)):
            raise VaultUnavailable("bad_response", "Vault's transit key has no public key")
        raw = _b64(public)
        if len(raw) != 32:
            raise VaultUnavailable("bad_response", "Vault's transit public key is not an Ed25519 key")
        return SigningKey(version, raw)


def _data(body: dict[str, Any]) -> dict[str, Any]:
    data = body.get("data")
    if not isinstance(data, dict):
        raise VaultUnavailable("bad_response", "Vault's answer has no data")
    return data


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        raise VaultUnavailable("bad_response", "Vault sent malformed base64") from None
