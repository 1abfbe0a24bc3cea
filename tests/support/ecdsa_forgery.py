"""ECDSA signature malleability: from one valid ES256 signature (r, s), the other valid one (r, n - s).

A JWS carries ES256 signatures as raw ``r || s`` (RFC 7518, 3.4), 32 bytes each; ``n`` is the order of
P-256. Both signatures verify, since ECDSA accepts either ``s`` (PyJWT, like most verifiers, does not insist
on low ``s``), so anything keyed on the raw token sees two different tokens.
"""

from __future__ import annotations

import base64

from tests.support.oidc_issuer import b64url

P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def _unb64url(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def malleate_es256(token: str) -> str:
    """The same ES256 token, header and payload unchanged, with ``s`` replaced by ``n - s``."""
    signing_input, _, signature = token.rpartition(".")
    raw = _unb64url(signature)
    assert len(raw) == 64, "an ES256 JWS signature is r || s, 32 bytes each"
    r, s = raw[:32], int.from_bytes(raw[32:], "big")
    return f"{signing_input}.{b64url(r + (P256_ORDER - s).to_bytes(32, 'big'))}"
