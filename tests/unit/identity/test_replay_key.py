"""Single use is keyed on the token's jti, or on its signing input, never on the raw token (docs/API.md,
"Authentication"): security review, issue 18, finding 6 (ECDSA malleability)."""

from __future__ import annotations

import hashlib

import jwt

from app.identity.oidc import TokenVerifier, replay_key
from tests.support.ecdsa_forgery import malleate_es256
from tests.support.oidc_issuer import DEFAULT_AUDIENCE, OMIT, OidcIssuer


def test_a_malleated_es256_token_verifies_and_has_the_same_replay_key(
    verifier: TokenVerifier, issuer: OidcIssuer
) -> None:
    token = issuer.mint({"jti": OMIT}, alg="ES256")
    twin = malleate_es256(token)
    assert twin != token
    public = issuer.current_key("ES256").private_key.public_key()
    for each in (token, twin):  # both are valid signatures of the same header and payload
        # the frozen clock's tokens are past their exp in real time: only the signature is in question here
        jwt.decode(
            each, public, algorithms=["ES256"], audience=DEFAULT_AUDIENCE, options={"verify_exp": False}
        )

    assert verifier.verify(twin).replay_key == verifier.verify(token).replay_key


def test_without_jti_the_key_is_the_hash_of_the_signing_input() -> None:
    assert (
        replay_key("https://issuer", None, "aGVhZA.cGF5bG9hZA.c2ln")
        == hashlib.sha256(b"aGVhZA.cGF5bG9hZA").hexdigest()
    )
    assert replay_key("https://issuer", None, "aGVhZA.cGF5bG9hZA.other") == replay_key(
        "https://issuer", None, "aGVhZA.cGF5bG9hZA.c2ln"
    )
    assert replay_key("https://issuer", None, "aGVhZA.b3RoZXI.c2ln") != replay_key(
        "https://issuer", None, "aGVhZA.cGF5bG9hZA.c2ln"
    )


def test_with_a_jti_the_key_is_issuer_and_jti_whatever_the_signature() -> None:
    expected = hashlib.sha256(b"https://issuer\x00abc").hexdigest()
    assert (
        replay_key("https://issuer", "abc", "h.p.s1")
        == expected
        == replay_key("https://issuer", "abc", "h.p.s2")
    )
    assert replay_key("https://other", "abc", "h.p.s1") != expected
