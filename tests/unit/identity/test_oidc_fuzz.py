"""Whatever bytes arrive as a token, the verifier answers TokenRejected (or accepts a valid one): no crash.

The verifier is real and its issuer is up, so random headers and payloads that name our issuer reach the
key lookup and the signature check too.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.identity.errors import TokenRejected
from app.identity.oidc import TokenVerifier
from app.identity.workload import VerifiedToken
from tests.support.oidc_issuer import OidcIssuer, b64url, encode_token

FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=25,
)
json_objects = st.dictionaries(st.text(max_size=12), json_values, max_size=8)
segments = st.from_regex(r"[A-Za-z0-9_\-]{0,80}", fullmatch=True)


def only_rejections(verifier: TokenVerifier, token: Any) -> VerifiedToken | None:
    try:
        return verifier.verify(token)
    except TokenRejected:
        return None


@FUZZ
@given(token=st.text(max_size=400))
def test_random_text(verifier: TokenVerifier, token: str) -> None:
    only_rejections(verifier, token)


@FUZZ
@given(data=st.binary(max_size=400))
def test_random_bytes_as_text(verifier: TokenVerifier, data: bytes) -> None:
    only_rejections(verifier, data.decode("latin-1"))
    only_rejections(verifier, data.decode("utf-8", "surrogateescape"))


@FUZZ
@given(parts=st.lists(segments, min_size=1, max_size=5))
def test_random_base64url_segments(verifier: TokenVerifier, parts: list[str]) -> None:
    only_rejections(verifier, ".".join(parts))


@FUZZ
@given(header=json_objects, payload=json_objects, signature=st.binary(max_size=300))
def test_random_json_objects(
    verifier: TokenVerifier, header: dict[str, Any], payload: dict[str, Any], signature: bytes
) -> None:
    only_rejections(verifier, encode_token(header, payload, signature))


@FUZZ
@given(
    header_extra=json_objects,
    payload=json_objects,
    alg=st.sampled_from(["RS256", "ES256", "PS256", "EdDSA", "ES512", "RS512"]),
    kid_choice=st.sampled_from(["none", "rsa", "ec", "rsa", "ec", "random"]),
    random_kid=st.text(max_size=20),
    signature=st.binary(max_size=300),
)
def test_random_claims_under_our_issuer_reach_the_signature_check(
    verifier: TokenVerifier,
    issuer: OidcIssuer,
    header_extra: dict[str, Any],
    payload: dict[str, Any],
    alg: str,
    kid_choice: str,
    random_kid: str,
    signature: bytes,
) -> None:
    kids = {
        "rsa": issuer.current_key("RS256").kid,
        "ec": issuer.current_key("ES256").kid,
        "random": random_kid,
    }
    header = header_extra | {"alg": alg} | ({"kid": kids[kid_choice]} if kid_choice in kids else {})
    claims = payload | {"iss": issuer.url}
    assert only_rejections(verifier, encode_token(header, claims, signature)) is None  # never a valid forgery


@FUZZ
@given(overrides=json_objects, header_extra=json_objects)
def test_validly_signed_tokens_with_random_claims_either_verify_or_are_rejected(
    verifier: TokenVerifier, issuer: OidcIssuer, overrides: dict[str, Any], header_extra: dict[str, Any]
) -> None:
    header_extra.pop("alg", None)
    header_extra.pop("kid", None)
    token = issuer.mint(overrides, alg="ES256", headers=header_extra)
    verified = only_rejections(verifier, token)
    if verified is not None:
        assert verified.identity.issuer == "github"
        assert "crit" not in header_extra


@FUZZ
@given(raw=st.text(max_size=200))
def test_random_json_text_payloads(verifier: TokenVerifier, issuer: OidcIssuer, raw: str) -> None:
    header = json.dumps({"alg": "RS256", "kid": issuer.current_key().kid})
    only_rejections(verifier, issuer.sign_raw(header, raw))
    only_rejections(
        verifier, f"{b64url(header.encode())}.{b64url(raw.encode('utf-8', 'surrogatepass'))}.AAAA"
    )
