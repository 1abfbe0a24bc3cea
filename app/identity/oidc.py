"""Verify a CI job's OIDC ID token and turn it into a :class:`VerifiedToken`, refusing every forgery.

Order of checks: size → structure (3 base64url segments of JSON objects, no duplicate keys) → ``alg`` →
``crit`` → ``iss`` → key by ``kid`` → the algorithm must suit that key → signature (PyJWT) → ``exp`` present
→ ``aud`` → ``exp`` / ``nbf`` / ``iat`` against the clock (or ``at``) with the issuer's leeway.

Header parameters that point at keys (``jku``, ``x5u``, ``jwk``, ``x5c``) are never read: keys come only
from the issuer's registered JWKS.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar

from jwt.exceptions import PyJWTError

from app.clock import Clock
from app.decision.reasons import (
    BAD_AUDIENCE,
    BAD_SIGNATURE,
    MALFORMED_TOKEN,
    TOKEN_EXPIRED,
    TOKEN_NOT_YET_VALID,
    UNKNOWN_ISSUER,
    UNSUPPORTED_ALGORITHM,
)
from app.identity.claims import map_claims
from app.identity.errors import TokenRejected
from app.identity.issuer_config import IssuerConfig
from app.identity.jwks import ALLOWED_ALGORITHMS, JwksCache, SigningKey
from app.identity.workload import VerifiedToken

log = logging.getLogger(__name__)

MAX_TOKEN_BYTES = 16 * 1024
_SEGMENT = re.compile(r"[A-Za-z0-9_-]*")

IssuerLookup = Callable[[str], IssuerConfig | None]
P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Parsed:
    raw: str
    header: dict[str, Any]
    payload: dict[str, Any]
    alg: str
    kid: str | None
    iss: str
    signing_input: bytes  # header.payload, as signed
    signature: bytes


class TokenVerifier:
    """Checks tokens against the registered issuers (looked up by exact ``iss``) and their JWKS."""

    def __init__(self, issuers: IssuerLookup, jwks: JwksCache, clock: Clock) -> None:
        self._issuers = issuers
        self._jwks = jwks
        self._clock = clock

    def verify(self, token: str, *, at: datetime | None = None) -> VerifiedToken:
        """The verified token, or :class:`TokenRejected` / :class:`IssuerUnavailable`.

        ``at`` checks ``exp``/``nbf``/``iat`` as of another instant (dry runs); keys are still current ones.
        Exceptions of the issuer lookup (e.g. the database) pass through unchanged.
        """
        if at is not None and at.tzinfo is None:
            raise ValueError("at must be timezone-aware")
        parsed = _guarded(_parse, token)
        config = self._issuers(parsed.iss)
        if config is None or config.issuer != parsed.iss:
            raise TokenRejected(UNKNOWN_ISSUER, "the token's issuer is not registered")
        key = self._jwks.signing_key(config, parsed.kid)
        _guarded(self._check_signature, parsed, key)
        now = at if at is not None else self._clock.now()
        return _guarded(_accept, parsed, config, now)

    def _check_signature(self, parsed: _Parsed, key: SigningKey) -> None:
        """PyJWT's algorithm verifies the segments ``_parse`` already decoded strictly (``PyJWS.decode``
        would parse and decode the whole token again: a tenth of a lease's CPU, docs/BENCHMARKS.md)."""
        bound = key.for_algorithm(parsed.alg)  # the key decides which algorithms it verifies
        if bound is None:
            raise TokenRejected(BAD_SIGNATURE, f"the token's algorithm {parsed.alg} does not suit its key")
        algorithm = bound.Algorithm
        try:
            public_key = algorithm.prepare_key(bound.key)
            if algorithm.check_key_length(public_key) is not None:  # e.g. RSA under 2048 bits
                raise TokenRejected(BAD_SIGNATURE, "the issuer's key is too short to be trusted")
            valid = algorithm.verify(parsed.signing_input, public_key, parsed.signature)
        except PyJWTError:  # the key does not suit the algorithm (curve, size)
            raise TokenRejected(
                BAD_SIGNATURE, "the signature cannot be verified with the issuer's key"
            ) from None
        if not valid:
            raise TokenRejected(BAD_SIGNATURE, "the signature does not verify")


def _guarded(step: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a parsing or checking step; anything unexpected becomes ``malformed_token``, nothing else."""
    try:
        return step(*args, **kwargs)
    except TokenRejected:
        raise
    except Exception as exc:
        log.info("token refused as malformed: %s", type(exc).__name__)  # never the token itself
        raise TokenRejected(MALFORMED_TOKEN, "the token could not be parsed") from None


# ------------------------------------------------------------------------------------------ parsing


def _parse(token: str) -> _Parsed:
    if not isinstance(token, str) or len(token) > MAX_TOKEN_BYTES:
        raise TokenRejected(MALFORMED_TOKEN, f"the token is not a string of at most {MAX_TOKEN_BYTES} bytes")
    segments = token.split(".")
    if len(segments) != 3:
        raise TokenRejected(MALFORMED_TOKEN, "a JWS has exactly three dot-separated segments")
    header = _json_segment(segments[0], "header")
    payload = _json_segment(segments[1], "payload")
    signature = _b64url(segments[2], "signature")

    alg = header.get("alg")
    if not isinstance(alg, str):
        raise TokenRejected(MALFORMED_TOKEN, "the header names no algorithm")
    if alg not in ALLOWED_ALGORITHMS:  # none (any casing), HS*, anything unknown
        raise TokenRejected(UNSUPPORTED_ALGORITHM, "only asymmetric signature algorithms are accepted")
    if "crit" in header or "b64" in header:  # RFC 7797's b64 needs crit; we support no extension
        raise TokenRejected(
            MALFORMED_TOKEN, "the token requires header extensions ('crit') we do not support"
        )
    kid = header.get("kid")
    if "kid" in header and not isinstance(kid, str):
        raise TokenRejected(MALFORMED_TOKEN, "the header's kid is not a string")
    iss = payload.get("iss")
    if iss is None:
        raise TokenRejected(UNKNOWN_ISSUER, "the token names no issuer")
    if not isinstance(iss, str):
        raise TokenRejected(MALFORMED_TOKEN, "the token's iss is not a string")
    signing_input = f"{segments[0]}.{segments[1]}".encode("ascii")  # the alphabet only, checked above
    return _Parsed(token, header, payload, alg, kid, iss, signing_input, signature)


def _b64url(segment: str, name: str) -> bytes:
    """Strict unpadded base64url (RFC 7515): the alphabet only, canonical trailing bits."""
    if not _SEGMENT.fullmatch(segment) or len(segment) % 4 == 1:
        raise TokenRejected(MALFORMED_TOKEN, f"the {name} is not base64url")
    try:
        data = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise TokenRejected(MALFORMED_TOKEN, f"the {name} is not base64url") from None
    if base64.urlsafe_b64encode(data).rstrip(b"=") != segment.encode("ascii"):
        raise TokenRejected(MALFORMED_TOKEN, f"the {name} is not canonical base64url")
    return data


def _json_segment(segment: str, name: str) -> dict[str, Any]:
    if not segment:
        raise TokenRejected(MALFORMED_TOKEN, f"the {name} is empty")
    data = _b64url(segment, name)
    try:
        value = json.loads(data.decode("utf-8"), object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except _DuplicateKey:
        raise TokenRejected(MALFORMED_TOKEN, f"the {name} repeats a key") from None
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise TokenRejected(MALFORMED_TOKEN, f"the {name} is not JSON") from None
    if not isinstance(value, dict):
        raise TokenRejected(MALFORMED_TOKEN, f"the {name} is not a JSON object")
    return value


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _DuplicateKey
    return result


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# ------------------------------------------------------------------------------------- claim checks


def _accept(parsed: _Parsed, config: IssuerConfig, now: datetime) -> VerifiedToken:
    claims = parsed.payload
    if "exp" not in claims:
        raise TokenRejected(MALFORMED_TOKEN, "the token has no expiry (exp)")
    exp = _numeric(claims, "exp")
    nbf = _numeric(claims, "nbf")
    iat = _numeric(claims, "iat")
    assert exp is not None
    _check_audience(claims.get("aud"), config)

    instant = now.timestamp()
    leeway = config.leeway_seconds
    if exp <= instant - leeway:
        raise TokenRejected(TOKEN_EXPIRED, "the token has expired")
    if nbf is not None and nbf > instant + leeway:
        raise TokenRejected(TOKEN_NOT_YET_VALID, "the token is not valid yet (nbf)")
    if iat is not None and iat > instant + leeway:
        raise TokenRejected(TOKEN_NOT_YET_VALID, "the token was issued in the future (iat)")

    jti = claims.get("jti")
    if jti is not None and not isinstance(jti, str):
        raise TokenRejected(MALFORMED_TOKEN, "the token's jti is not a string")
    return VerifiedToken(
        identity=map_claims(config, claims),
        replay_key=replay_key(config.issuer, jti, parsed.raw),
        expires_at=datetime.fromtimestamp(exp, UTC),
        issued_at=datetime.fromtimestamp(iat, UTC) if iat is not None else None,
    )


def replay_key(issuer_url: str, jti: str | None, raw_token: str) -> str:
    """sha256 hex of ``issuer URL + NUL + jti``, or without a ``jti`` of the token's signing input (header
    and payload), never of the raw token (docs/API.md, "Authentication"): ECDSA accepts both ``s`` and
    ``n - s``, so one token has several valid signatures, and all of them are the same token. (A signing
    input has no NUL, so the two kinds of key cannot meet.)"""
    material = raw_token.rpartition(".")[0] if jti is None else f"{issuer_url}\x00{jti}"
    return hashlib.sha256(material.encode("utf-8", "surrogatepass")).hexdigest()


def _numeric(claims: dict[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None and name not in claims:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TokenRejected(MALFORMED_TOKEN, f"the token's {name} is not a number")
    return value


def _check_audience(aud: Any, config: IssuerConfig) -> None:
    if aud is None:
        raise TokenRejected(BAD_AUDIENCE, "the token names no audience")
    if isinstance(aud, str):
        audiences = [aud]
    elif isinstance(aud, list) and all(isinstance(a, str) for a in aud):
        audiences = aud
    else:
        raise TokenRejected(MALFORMED_TOKEN, "the token's aud is neither a string nor a list of strings")
    if not any(a in config.audiences for a in audiences):
        carried, accepted = _listed(audiences), _listed(config.audiences)
        raise TokenRejected(
            BAD_AUDIENCE, f"the token is for audience {carried}; this issuer accepts {accepted}"
        )


_SHOWN_AUDIENCES = 3
_SHOWN_CHARS = 60


def _listed(audiences: list[str] | tuple[str, ...]) -> str:
    """Audiences for a message (they are not secrets): each quoted and escaped by ``json.dumps`` so no control
    character or markup passes, cut at 60 characters, at most 3 and a count of the rest."""
    shown = [
        json.dumps(a if len(a) <= _SHOWN_CHARS else a[:_SHOWN_CHARS] + "...")
        for a in audiences[:_SHOWN_AUDIENCES]
    ]
    if len(audiences) > _SHOWN_AUDIENCES:
        shown.append(f"and {len(audiences) - _SHOWN_AUDIENCES} more")
    return ", ".join(shown) or "none"
