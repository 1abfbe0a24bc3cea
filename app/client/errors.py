"""What can go wrong in the CI client, each with the exit code a pipeline can branch on.

Messages name secrets, lease ids, keys and reason codes, never a secret value or a token.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_DENIED = 3
EXIT_UNAVAILABLE = 4


@dataclass(frozen=True, slots=True)
class DenialReason:
    code: str
    message: str
    policy: str | None = None


class ClientError(Exception):
    """A failure to report on stderr; ``lines`` follow the headline, indented."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, *, lines: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.lines = tuple(lines)


class UsageError(ClientError):
    """The command line or the job's environment is wrong: fix the job, not the broker."""

    exit_code = EXIT_USAGE


class Denied(ClientError):
    """The broker refused: a policy denial (403) or an ID token it does not accept (401)."""

    exit_code = EXIT_DENIED

    def __init__(
        self, message: str, *, reasons: Sequence[DenialReason] = (), lines: Sequence[str] = ()
    ) -> None:
        super().__init__(message, lines=lines)
        self.reasons = tuple(reasons)


class Unavailable(ClientError):
    """The broker, or what it depends on, did not answer; trying again later may work."""

    exit_code = EXIT_UNAVAILABLE


class LeaseEnded(ClientError):
    """The lease was already released, expired or revoked (409)."""
