"""Why a CI token was not accepted: plain exceptions carrying data; the HTTP layer maps them (401 / 503).

Messages are for the human reading the denial. They never contain the token, nor a value taken from it.
"""

from __future__ import annotations

from app.decision.reasons import (
    BAD_AUDIENCE,
    BAD_SIGNATURE,
    ISSUER_UNAVAILABLE,
    MALFORMED_TOKEN,
    TOKEN_EXPIRED,
    TOKEN_NOT_YET_VALID,
    TOKEN_REPLAYED,
    UNKNOWN_ISSUER,
    UNKNOWN_KEY,
    UNSUPPORTED_ALGORITHM,
    Reason,
)

TOKEN_REJECTION_CODES: frozenset[str] = frozenset(
    {
        MALFORMED_TOKEN,
        UNSUPPORTED_ALGORITHM,
        UNKNOWN_ISSUER,
        UNKNOWN_KEY,
        BAD_SIGNATURE,
        BAD_AUDIENCE,
        TOKEN_EXPIRED,
        TOKEN_NOT_YET_VALID,
        TOKEN_REPLAYED,
    }
)


class TokenRejected(Exception):
    """The token is not a valid credential (HTTP 401 with ``code`` as the reason)."""

    def __init__(self, code: str, message: str) -> None:
        if code not in TOKEN_REJECTION_CODES:
            raise ValueError(f"not a token rejection code: {code!r}")
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    def reason(self) -> Reason:
        return Reason(self.code, self.message)


class IssuerUnavailable(Exception):
    """The issuer's signing keys cannot be had and none usable are cached (HTTP 503, fail closed)."""

    code = ISSUER_UNAVAILABLE

    def __init__(self, issuer_name: str, message: str) -> None:
        super().__init__(f"{ISSUER_UNAVAILABLE}: issuer {issuer_name!r}: {message}")
        self.issuer_name = issuer_name
        self.message = message

    def reason(self) -> Reason:
        return Reason(self.code, f"the keys of issuer {self.issuer_name!r} are unavailable: {self.message}")
