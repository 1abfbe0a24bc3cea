"""A token for the wrong audience is refused with a message that names the audience it carried and the
ones the issuer accepts (audiences are not secrets), escaped and cut so a hostile value cannot flood or
forge it."""

from __future__ import annotations

import dataclasses

import pytest

from app.decision.reasons import BAD_AUDIENCE
from app.identity.errors import TokenRejected
from app.identity.issuer_config import IssuerConfig
from app.identity.oidc import TokenVerifier
from tests.support.oidc_issuer import DEFAULT_AUDIENCE, OidcIssuer


def _message(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(TokenRejected) as caught:
        verifier.verify(token)
    assert caught.value.code == BAD_AUDIENCE
    return caught.value.message


def test_the_refusal_names_the_token_audience_and_the_accepted_ones(
    verifier: TokenVerifier, issuer: OidcIssuer
) -> None:
    message = _message(verifier, issuer.mint({"aud": "https://elsewhere.example"}))
    assert '"https://elsewhere.example"' in message
    assert f'accepts "{DEFAULT_AUDIENCE}"' in message


def test_a_hostile_audience_is_escaped_and_cut(verifier: TokenVerifier, issuer: OidcIssuer) -> None:
    hostile = "evil\n[ERROR] forged line\x1b[31m" + "x" * 5000
    message = _message(verifier, issuer.mint({"aud": [hostile, "b", "c", "d", "e"]}))
    assert "\n" not in message and "\x1b" not in message
    assert len(message) < 400
    assert "and 2 more" in message


def test_many_accepted_audiences_are_counted_not_listed(
    registry: dict[str, IssuerConfig], config: IssuerConfig, verifier: TokenVerifier, issuer: OidcIssuer
) -> None:
    accepted = tuple(f"aud-{n}" for n in range(40))
    registry[config.issuer] = dataclasses.replace(config, audiences=accepted)
    message = _message(verifier, issuer.mint({"aud": "other"}))
    assert "and 37 more" in message
