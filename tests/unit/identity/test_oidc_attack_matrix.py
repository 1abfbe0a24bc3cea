"""The attack matrix: every forged or broken token is refused with its own 401 reason code.

Each row is a token an attacker (or a broken client) could send. Tokens are real JWS built by the loopback
issuer or by the forging helpers; the verifier fetches keys over real HTTP.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import timedelta

import pytest

from app.clock import FrozenClock
from app.decision.reasons import (
    BAD_AUDIENCE,
    BAD_SIGNATURE,
    MALFORMED_TOKEN,
    TOKEN_EXPIRED,
    TOKEN_NOT_YET_VALID,
    UNKNOWN_ISSUER,
    UNKNOWN_KEY,
    UNSUPPORTED_ALGORITHM,
)
from app.identity.errors import TokenRejected
from app.identity.issuer_config import IssuerConfig
from app.identity.jwks import JwksCache
from app.identity.oidc import MAX_TOKEN_BYTES, TokenVerifier
from tests.support.oidc_issuer import (
    DEFAULT_AUDIENCE,
    OMIT,
    AttackerServer,
    OidcIssuer,
    b64url,
    encode_token,
    forge_hmac,
    forge_unsigned,
    generate_key,
    json_segment,
    sign_token,
)

ConfigFactory = Callable[..., IssuerConfig]
A_STRING = b64url(b'"a string"')
NAN_EXP = b64url(b'{"exp": NaN}')


def refusal(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(TokenRejected) as caught:
        verifier.verify(token)
    return caught.value.code


# ---------------------------------------------------------------------------------------- algorithms


@pytest.mark.parametrize("spelling", ["none", "None", "NONE", "nOnE", "NoNe"])
@pytest.mark.parametrize("signature", [b"", b"\x00" * 256])
def test_alg_none_in_any_casing_is_unsupported(
    verifier: TokenVerifier,
    issuer: OidcIssuer,
    jwks_hits: Callable[[], int],
    spelling: str,
    signature: bytes,
) -> None:
    header = {"alg": spelling, "typ": "JWT", "kid": issuer.current_key().kid}
    token = encode_token(header, issuer.github_claims(), signature)
    assert refusal(verifier, token) == UNSUPPORTED_ALGORITHM
    assert refusal(verifier, forge_unsigned(issuer.github_claims(), alg=spelling)) == UNSUPPORTED_ALGORITHM
    assert jwks_hits() == 0  # refused before any key is fetched


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512", "hs256", "ES256K", "RSA-OAEP", "", "Ed25519"])
def test_symmetric_and_unknown_algorithms_are_unsupported(
    verifier: TokenVerifier, issuer: OidcIssuer, alg: str
) -> None:
    token = encode_token({"alg": alg, "kid": issuer.current_key().kid}, issuer.github_claims(), b"x" * 32)
    assert refusal(verifier, token) == UNSUPPORTED_ALGORITHM


@pytest.mark.parametrize("alg", [None, 256, ["RS256"], {"RS256": True}])
def test_missing_or_non_string_alg_is_malformed(
    verifier: TokenVerifier, issuer: OidcIssuer, alg: object
) -> None:
    header = {"typ": "JWT", "kid": issuer.current_key().kid} | ({} if alg is None else {"alg": alg})
    assert (
        refusal(verifier, sign_token(header, issuer.github_claims(), issuer.current_key())) == MALFORMED_TOKEN
    )


def _public_secrets(issuer: OidcIssuer) -> dict[str, bytes]:
    key = issuer.current_key("RS256")
    jwk = key.public_jwk()
    served = next(k for k in issuer.jwks()["keys"] if k["kid"] == key.kid)
    return {
        "pem": key.public_pem(),
        "pem-stripped": key.public_pem().strip(),
        "jwk-compact": json.dumps(jwk, separators=(",", ":")).encode(),
        "jwk-sorted": json.dumps(jwk, sort_keys=True).encode(),
        "jwk-as-served": json.dumps(served).encode(),
        "jwk-n": base64.urlsafe_b64decode(jwk["n"] + "=="),
    }


@pytest.mark.parametrize(
    "form", ["pem", "pem-stripped", "jwk-compact", "jwk-sorted", "jwk-as-served", "jwk-n"]
)
@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_hmac_keyed_with_the_issuers_public_rsa_key_fails(
    verifier: TokenVerifier, issuer: OidcIssuer, form: str, alg: str
) -> None:
    secret = _public_secrets(issuer)[form]
    token = forge_hmac(issuer.github_claims(), secret, alg=alg, kid=issuer.current_key().kid)
    assert refusal(verifier, token) == UNSUPPORTED_ALGORITHM


def test_algorithm_is_chosen_by_the_key_not_the_token(verifier: TokenVerifier, issuer: OidcIssuer) -> None:
    rsa_kid, ec_kid = issuer.current_key("RS256").kid, issuer.current_key("ES256").kid
    # An EC signature presented under the RSA key's kid, and the other way round.
    ec_under_rsa = issuer.mint(alg="ES256", kid=rsa_kid, signing_key=issuer.current_key("ES256"))
    rsa_under_ec = issuer.mint(alg="RS256", kid=ec_kid, signing_key=issuer.current_key("RS256"))
    assert refusal(verifier, ec_under_rsa) == BAD_SIGNATURE
    assert refusal(verifier, rsa_under_ec) == BAD_SIGNATURE
    # The JWKS declares alg RS256 for the RSA key: a PS256 signature by that very key is refused too.
    assert refusal(verifier, issuer.mint(alg="PS256")) == BAD_SIGNATURE
    assert refusal(verifier, issuer.mint(alg="RS512")) == BAD_SIGNATURE


# ------------------------------------------------------------------------------------------------ keys


def test_signature_by_a_key_not_in_the_jwks_under_a_real_kid(
    verifier: TokenVerifier, issuer: OidcIssuer
) -> None:
    impostor_rsa, impostor_ec = generate_key("RS256"), generate_key("ES256")
    real_rsa, real_ec = issuer.current_key("RS256").kid, issuer.current_key("ES256").kid
    assert refusal(verifier, issuer.mint(kid=real_rsa, signing_key=impostor_rsa)) == BAD_SIGNATURE
    assert refusal(verifier, issuer.mint(alg="ES256", kid=real_ec, signing_key=impostor_ec)) == BAD_SIGNATURE


def test_tampered_payload_fails_the_signature(verifier: TokenVerifier, issuer: OidcIssuer) -> None:
    header, _, signature = issuer.mint().split(".")
    forged_payload = json_segment(issuer.github_claims(repo="acme/other"))
    assert refusal(verifier, f"{header}.{forged_payload}.{signature}") == BAD_SIGNATURE


def test_missing_kid_with_several_keys_is_unknown_key(verifier: TokenVerifier, issuer: OidcIssuer) -> None:
    assert len(issuer.published_kids) == 2
    assert refusal(verifier, issuer.mint(headers={"kid": OMIT})) == UNKNOWN_KEY


def test_missing_kid_with_exactly_one_signing_key_is_accepted(
    verifier: TokenVerifier, issuer: OidcIssuer
) -> None:
    issuer.remove_key(issuer.current_key("ES256").kid)
    issuer.publish_jwk({"kty": "oct", "k": b64url(b"not-a-signing-key"), "kid": "hmac"})  # ignored
    enc = generate_key("RS256").public_jwk()
    issuer.publish_jwk(enc | {"use": "enc", "kid": "encryption"})  # ignored
    assert verifier.verify(issuer.mint(headers={"kid": OMIT})).identity.repository == "acme/payments"


@pytest.mark.parametrize("kid", ["no-such-key", "../../etc/passwd", "/jwks", "", "%2e%2e%2f", "a" * 4000])
def test_unknown_or_path_like_kid_is_unknown_key(
    verifier: TokenVerifier, issuer: OidcIssuer, kid: str
) -> None:
    assert refusal(verifier, issuer.mint(kid=kid)) == UNKNOWN_KEY
    assert set(issuer.request_counts()) <= {"/.well-known/openid-configuration", "/jwks"}


@pytest.mark.parametrize("kid", [7, None, ["k"], {"k": 1}])
def test_non_string_kid_is_malformed(verifier: TokenVerifier, issuer: OidcIssuer, kid: object) -> None:
    assert refusal(verifier, issuer.mint(headers={"kid": kid})) == MALFORMED_TOKEN


# --------------------------------------------------------------------- key-carrying headers are ignored


@pytest.mark.parametrize("member", ["jku", "x5u", "jwk", "x5c"])
@pytest.mark.parametrize("kid_choice", ["attacker", "real"])
def test_key_headers_pointing_at_the_attacker_are_never_used(
    verifier: TokenVerifier,
    issuer: OidcIssuer,
    attacker: AttackerServer,
    member: str,
    kid_choice: str,
) -> None:
    values = {
        "jku": attacker.jwks_url,
        "x5u": attacker.url + "/cert.pem",
        "jwk": attacker.key.public_jwk(),
        "x5c": [base64.b64encode(attacker.certificate_der).decode()],
    }
    kid = attacker.key.kid if kid_choice == "attacker" else issuer.current_key().kid
    token = issuer.mint(kid=kid, signing_key=attacker.key, headers={member: values[member]})
    assert refusal(verifier, token) == (UNKNOWN_KEY if kid_choice == "attacker" else BAD_SIGNATURE)
    assert attacker.requests == []


def test_all_key_headers_at_once_and_a_real_token_still_verifies(
    verifier: TokenVerifier, issuer: OidcIssuer, attacker: AttackerServer
) -> None:
    headers = {"jku": attacker.jwks_url, "x5u": attacker.url + "/c.pem", "jwk": attacker.key.public_jwk()}
    # Signed by the issuer's real key: the extra headers change nothing, and are not fetched.
    assert verifier.verify(issuer.mint(headers=headers)).identity.repository == "acme/payments"
    assert attacker.requests == []


# ---------------------------------------------------------------------------------------------- crit


@pytest.mark.parametrize(
    "extra",
    [
        {"crit": ["exp"]},
        {"crit": ["urn:example:unknown"], "urn:example:unknown": 1},
        {"crit": ["b64"], "b64": False},
        {"crit": ["b64"], "b64": True},
        {"crit": []},
        {"crit": "b64"},
        {"crit": None},
    ],
)
def test_any_crit_header_is_malformed(
    verifier: TokenVerifier, issuer: OidcIssuer, extra: dict[str, object]
) -> None:
    assert refusal(verifier, issuer.mint(headers=extra)) == MALFORMED_TOKEN


@pytest.mark.parametrize("b64", [False, True])
def test_b64_without_crit_is_malformed(verifier: TokenVerifier, issuer: OidcIssuer, b64: bool) -> None:
    assert refusal(verifier, issuer.mint(headers={"b64": b64})) == MALFORMED_TOKEN


# ---------------------------------------------------------------------------------------------- time


def _at(clock: FrozenClock, seconds: int) -> int:
    return int(clock.now().timestamp()) + seconds


@pytest.mark.parametrize(
    ("exp_offset", "accepted"),
    [(-31, False), (-30, False), (-29, True), (0, True), (1, True)],
)
def test_exp_boundary_with_30s_leeway(
    verifier: TokenVerifier, issuer: OidcIssuer, clock: FrozenClock, exp_offset: int, accepted: bool
) -> None:
    token = issuer.mint({"exp": _at(clock, exp_offset), "iat": _at(clock, -300), "nbf": _at(clock, -300)})
    if accepted:
        assert verifier.verify(token).expires_at.timestamp() == _at(clock, exp_offset)
    else:
        assert refusal(verifier, token) == TOKEN_EXPIRED


@pytest.mark.parametrize("claim", ["nbf", "iat"])
@pytest.mark.parametrize(("offset", "accepted"), [(29, True), (30, True), (31, False), (3600, False)])
def test_nbf_and_iat_boundary_with_30s_leeway(
    verifier: TokenVerifier,
    issuer: OidcIssuer,
    clock: FrozenClock,
    claim: str,
    offset: int,
    accepted: bool,
) -> None:
    token = issuer.mint({claim: _at(clock, offset), "exp": _at(clock, 3600)})
    if accepted:
        verifier.verify(token)
    else:
        assert refusal(verifier, token) == TOKEN_NOT_YET_VALID


def test_leeway_zero_is_exact(
    issuer: OidcIssuer,
    registry: dict[str, IssuerConfig],
    verifier: TokenVerifier,
    clock: FrozenClock,
    config_for: ConfigFactory,
) -> None:
    registry[issuer.url] = config_for(issuer, leeway_seconds=0)
    assert refusal(verifier, issuer.mint({"exp": _at(clock, 0)})) == TOKEN_EXPIRED
    verifier.verify(issuer.mint({"exp": _at(clock, 1)}))
    verifier.verify(issuer.mint({"nbf": _at(clock, 0), "iat": _at(clock, 0)}))
    assert refusal(verifier, issuer.mint({"nbf": _at(clock, 1)})) == TOKEN_NOT_YET_VALID


def test_time_moves_a_token_from_valid_to_expired(
    verifier: TokenVerifier, issuer: OidcIssuer, clock: FrozenClock
) -> None:
    token = issuer.mint()  # exp = now + 5 min
    verifier.verify(token)
    clock.advance(timedelta(minutes=5, seconds=29))
    verifier.verify(token)
    clock.advance(timedelta(seconds=1))
    assert refusal(verifier, token) == TOKEN_EXPIRED


@pytest.mark.parametrize("exp", [OMIT, None, "1893456000", True, [1], 1e400, 10**30])
def test_missing_or_non_numeric_exp_is_malformed(
    verifier: TokenVerifier, issuer: OidcIssuer, exp: object
) -> None:
    assert refusal(verifier, issuer.mint({"exp": exp})) == MALFORMED_TOKEN


@pytest.mark.parametrize("claim", ["nbf", "iat"])
def test_non_numeric_nbf_or_iat_is_malformed(verifier: TokenVerifier, issuer: OidcIssuer, claim: str) -> None:
    assert refusal(verifier, issuer.mint({claim: "yesterday"})) == MALFORMED_TOKEN


def test_expired_forgery_reports_the_signature_first(verifier: TokenVerifier, issuer: OidcIssuer) -> None:
    token = issuer.mint({"exp": 1}, kid=issuer.current_key().kid, signing_key=generate_key("RS256"))
    assert refusal(verifier, token) == BAD_SIGNATURE


# ---------------------------------------------------------------------------------------------- issuer


@pytest.mark.parametrize(
    "spoof",
    [
        lambda url: url + "/",
        lambda url: url.replace("http://", "https://"),
        lambda url: url.upper(),
        lambda url: url[:-1],  # a prefix of ours
        lambda url: url + "0",  # ours is a prefix of it
        lambda url: url + ".attacker.example",
        lambda url: url + "/issuer",
        lambda url: " " + url,
        lambda url: "https://token.actions.githubusercontent.com",
    ],
)
def test_wrong_iss_is_unknown_issuer(
    verifier: TokenVerifier, issuer: OidcIssuer, spoof: Callable[[str], str]
) -> None:
    assert refusal(verifier, issuer.mint({"iss": spoof(issuer.url)})) == UNKNOWN_ISSUER
    assert issuer.requests == []  # nothing fetched for an unregistered issuer


def test_missing_iss_is_unknown_issuer_and_non_string_is_malformed(
    verifier: TokenVerifier, issuer: OidcIssuer
) -> None:
    assert refusal(verifier, issuer.mint({"iss": OMIT})) == UNKNOWN_ISSUER
    assert refusal(verifier, issuer.mint({"iss": [issuer.url]})) == MALFORMED_TOKEN


def test_a_lookup_that_returns_another_issuers_config_is_not_trusted(
    issuer: OidcIssuer, jwks_cache: JwksCache, clock: FrozenClock, config: IssuerConfig
) -> None:
    verifier = TokenVerifier(lambda iss: config, jwks_cache, clock)  # a lookup that ignores its argument
    assert refusal(verifier, issuer.mint({"iss": issuer.url + "/"})) == UNKNOWN_ISSUER


# -------------------------------------------------------------------------------------------- audience


@pytest.mark.parametrize(
    "aud",
    [OMIT, None, "https://transom.example.org", DEFAULT_AUDIENCE + "/", [], ["https://other.example"]],
)
def test_wrong_or_missing_audience(verifier: TokenVerifier, issuer: OidcIssuer, aud: object) -> None:
    assert refusal(verifier, issuer.mint({"aud": aud})) == BAD_AUDIENCE


@pytest.mark.parametrize("aud", [[DEFAULT_AUDIENCE], ["https://other.example", DEFAULT_AUDIENCE]])
def test_audience_list_containing_ours_is_accepted(
    verifier: TokenVerifier, issuer: OidcIssuer, aud: object
) -> None:
    verifier.verify(issuer.mint({"aud": aud}))


@pytest.mark.parametrize("aud", [7, {"aud": DEFAULT_AUDIENCE}, [DEFAULT_AUDIENCE, 7]])
def test_audience_of_the_wrong_shape_is_malformed(
    verifier: TokenVerifier, issuer: OidcIssuer, aud: object
) -> None:
    assert refusal(verifier, issuer.mint({"aud": aud})) == MALFORMED_TOKEN


# ------------------------------------------------------------------------------------------- structure


def _good(issuer: OidcIssuer) -> tuple[str, str, str]:
    header, payload, signature = issuer.mint().split(".")
    return header, payload, signature


@pytest.mark.parametrize(
    "build",
    [
        lambda h, p, s: "",
        lambda h, p, s: ".",
        lambda h, p, s: "..",
        lambda h, p, s: f"{h}.{p}",
        lambda h, p, s: f"{h}.{p}.{s}.{s}",
        lambda h, p, s: f"{h}.{p}.{s}.",
        lambda h, p, s: f".{p}.{s}",
        lambda h, p, s: f"{h}..{s}",
        lambda h, p, s: f"{h}.{p}.{s}=",
        lambda h, p, s: f"{h}=.{p}.{s}",
        lambda h, p, s: f"{h}.{p}!.{s}",
        lambda h, p, s: f"{h}.{p}.{s[:-1]}*",
        lambda h, p, s: f" {h}.{p}.{s}",
        lambda h, p, s: f"{h}.{p}.{s}\n",
        lambda h, p, s: f"{h}.{p[:-1]}é.{s}",
        lambda h, p, s: f"{h}.{p}.{s}".replace("-", "+"),
        lambda h, p, s: f"Bearer {h}.{p}.{s}",
        lambda h, p, s: f"{h}.{b64url(b'not json')}.{s}",
        lambda h, p, s: f"{b64url(b'not json')}.{p}.{s}",
        lambda h, p, s: f"{h}.{b64url(b'[1, 2, 3]')}.{s}",
        lambda h, p, s: f"{b64url(b'[]')}.{p}.{s}",
        lambda h, p, s: f"{h}.{A_STRING}.{s}",
        lambda h, p, s: f"{h}.{b64url(b'null')}.{s}",
        lambda h, p, s: f"{h}.{b64url(json.dumps({'iss': 1}).encode('utf-16'))}.{s}",
        lambda h, p, s: f"{h}.{NAN_EXP}.{s}",
        lambda h, p, s: f"{h}.{b64url(bytes([0xFF, 0xFE, 0x7B, 0x7D]))}.{s}",
        lambda h, p, s: f"{h}.{b64url(b'[' * 5000)}.{s}",
    ],
)
def test_broken_structure_is_malformed(
    verifier: TokenVerifier, issuer: OidcIssuer, build: Callable[[str, str, str], str]
) -> None:
    assert refusal(verifier, build(*_good(issuer))) == MALFORMED_TOKEN


def test_non_canonical_base64_is_malformed(verifier: TokenVerifier, issuer: OidcIssuer) -> None:
    header, payload, signature = _good(issuer)
    # The last character of a segment whose length is 2 or 3 mod 4 carries unused low bits; flip them.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for segment_index, segment in enumerate((header, payload, signature)):
        if len(segment) % 4 in (2, 3):
            last = alphabet.index(segment[-1])
            tweaked = segment[:-1] + alphabet[last | 1]
            if tweaked == segment:
                tweaked = segment[:-1] + alphabet[last & ~1]
            parts = [header, payload, signature]
            parts[segment_index] = tweaked
            assert refusal(verifier, ".".join(parts)) == MALFORMED_TOKEN


def test_not_a_string_is_malformed(verifier: TokenVerifier, issuer: OidcIssuer) -> None:
    assert refusal(verifier, issuer.mint().encode()) == MALFORMED_TOKEN  # type: ignore[arg-type]
    assert refusal(verifier, None) == MALFORMED_TOKEN  # type: ignore[arg-type]


def _token_of_length(issuer: OidcIssuer, length: int) -> str:
    """A validly signed token exactly ``length`` characters long (a filler claim sized by arithmetic)."""
    for header_pad in range(4):
        headers = {"pad": "y" * header_pad}
        header, payload, signature = issuer.mint({"filler": ""}, headers=headers).split(".")
        target = length - len(header) - len(signature) - 2  # characters left for the payload segment
        if target % 4 == 1:  # no byte count encodes to that many base64 characters
            continue
        unpadded = len(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        token = issuer.mint({"filler": "x" * (target * 3 // 4 - unpadded)}, headers=headers)
        assert len(token) == length
        return token
    raise AssertionError(f"could not build a token of length {length}")


def test_oversized_token_is_refused_before_parsing(
    verifier: TokenVerifier, issuer: OidcIssuer, jwks_hits: Callable[[], int]
) -> None:
    assert refusal(verifier, _token_of_length(issuer, MAX_TOKEN_BYTES + 1)) == MALFORMED_TOKEN
    assert refusal(verifier, "A" * (10 * MAX_TOKEN_BYTES)) == MALFORMED_TOKEN
    assert jwks_hits() == 0
    verifier.verify(_token_of_length(issuer, MAX_TOKEN_BYTES))  # the limit itself is fine


# -------------------------------------------------------------------------------------- duplicate keys


def test_duplicate_claims_are_malformed(verifier: TokenVerifier, issuer: OidcIssuer) -> None:
    claims = issuer.github_claims()
    body = json.dumps(claims)[:-1]
    header = json.dumps({"alg": "RS256", "typ": "JWT", "kid": issuer.current_key().kid})
    twice_repo = body + ', "repository": "acme/other"}'
    twice_aud = body + ', "aud": "https://elsewhere.example"}'
    twice_nested = body + ', "ctx": {"a": 1, "a": 2}}'
    for payload in (twice_repo, twice_aud, twice_nested):
        assert refusal(verifier, issuer.sign_raw(header, payload)) == MALFORMED_TOKEN
    # The same texts without the duplicate verify, so the duplicate is the only thing wrong.
    verifier.verify(issuer.sign_raw(header, body + ', "ctx": {"a": 1}}'))


def test_duplicate_header_members_are_malformed(verifier: TokenVerifier, issuer: OidcIssuer) -> None:
    kid = issuer.current_key().kid
    payload = json.dumps(issuer.github_claims())
    for header in (
        f'{{"alg": "none", "alg": "RS256", "kid": "{kid}"}}',
        f'{{"alg": "RS256", "kid": "other", "kid": "{kid}"}}',
    ):
        assert refusal(verifier, issuer.sign_raw(header, payload)) == MALFORMED_TOKEN
