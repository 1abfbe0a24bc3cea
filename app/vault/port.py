"""The vault port: what the lease service needs from Vault, in Transom's own types.

Nothing here knows hvac. ``hvac_backend.HvacBackend`` is the one implementation against a real Vault/OpenBao;
a fake for fast service unit tests implements the same ``SecretBackend`` protocol.

Secret values live only in ``IssuedCredential.data``, which goes back to the CI job and nowhere else
(invariant 4): a ``VaultHandle`` (what the lease row stores) never holds one, ``IssuedCredential``'s repr
hides ``data``, and ``VaultError`` messages are written by the adapter, never copied from a Vault response.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from app.settings import PROJECT_ROOT

SecretKind = Literal["kv", "token", "dynamic"]
# Added to every leased token: denies renewing itself (config/vault/transom-token-guard.hcl).
TOKEN_GUARD_POLICY = "transom-token-guard"
TOKEN_GUARD_HCL = PROJECT_ROOT / "config" / "vault" / "transom-token-guard.hcl"


@dataclass(frozen=True, slots=True)
class SecretSpec:
    """A named target in Vault (docs/API.md, "Secrets (admin)").

    - ``kv``: KV v2 secret at ``mount``/``path``; ``keys`` selects a subset (``None``: all keys).
    - ``token``: a fresh orphan token (through the broker's token role) with ``policies`` (at least one: an
      empty list would make Vault hand out the role's or broker's policies) and ``num_uses`` (0: unlimited).
    - ``dynamic``: what the secrets engine returns when ``path`` is read (e.g. ``database/creds/deployer``).
    """

    name: str
    kind: SecretKind
    mount: str | None = None
    path: str | None = None
    keys: tuple[str, ...] | None = None
    policies: tuple[str, ...] = ()
    num_uses: int = 0

    def __post_init__(self) -> None:
        if self.kind == "kv" and not (self.mount and self.path):
            raise ValueError(f"kv secret {self.name!r} needs a mount and a path")
        if self.kind == "kv" and self.keys is not None and not self.keys:
            raise ValueError(f"kv secret {self.name!r}: keys, when given, must name at least one key")
        if self.kind == "token" and not self.policies:
            raise ValueError(f"token secret {self.name!r} needs at least one Vault policy")
        if self.kind == "dynamic" and not self.path:
            raise ValueError(f"dynamic secret {self.name!r} needs a path")
        if self.num_uses < 0:
            raise ValueError(f"secret {self.name!r}: num_uses must be >= 0")


@dataclass(frozen=True, slots=True)
class VaultHandle:
    """What Transom stores to renew or revoke a credential later. Never a secret value.

    ``kv``: neither field (a static value cannot be revoked at Vault); ``token``: the token's ``accessor`` and
    the Vault ``lease_id`` of the token (``auth/token/create/<role>/...``; absent on rows issued before the
    token role); ``dynamic``: the Vault ``lease_id``.
    """

    kind: SecretKind
    accessor: str | None = None
    lease_id: str | None = None

    def __post_init__(self) -> None:
        expected = {"kv": (False, False), "token": (True, bool(self.lease_id)), "dynamic": (False, True)}
        if (bool(self.accessor), bool(self.lease_id)) != expected[self.kind]:
            raise ValueError(f"a {self.kind} handle has the wrong fields set")


@dataclass(frozen=True, slots=True)
class IssuedCredential:
    handle: VaultHandle
    # The secret values: for the CI job only. repr=False keeps them out of logs and tracebacks.
    data: dict[str, Any] = field(repr=False)
    # What Vault actually granted, when it says (None for kv, which has no TTL at Vault).
    ttl: timedelta | None


@dataclass(frozen=True, slots=True)
class TokenRolePolicies:
    """What the Vault token role that issues ``token`` secrets allows (``auth/token/roles/<role>``).

    Vault enforces it at every issue; Transom reads it to refuse, when a secret is saved, policies that would
    fail at lease time (docs/API.md). Globs follow Vault: ``*`` matches any run of characters.
    """

    role: str
    allowed: tuple[str, ...] = ()
    allowed_globs: tuple[str, ...] = ()
    disallowed: tuple[str, ...] = ()

    def refused(self, policies: tuple[str, ...] | list[str]) -> list[str]:
        """The policies of ``policies`` the role would refuse, in the given order."""
        globs = [re.compile(".*".join(re.escape(part) for part in g.split("*"))) for g in self.allowed_globs]
        return [
            name
            for name in policies
            if name in self.disallowed
            or not (name in (*self.allowed, "default") or any(g.fullmatch(name) for g in globs))
        ]

    def describe(self) -> str:
        names = sorted({*self.allowed, *self.allowed_globs} - {"default", TOKEN_GUARD_POLICY})
        return ", ".join(names) if names else "none"


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """What Transom's database says about the tokens of the broker's role, for crash recovery.

    ``keys``: the Vault lease ids stored on live token leases. ``spare_after``: tokens Vault issued from this
    instant on may belong to an issue still in flight (a write-ahead row without a handle yet). ``unsettled``:
    live rows holding a token whose Vault lease id is not stored (issued before the token role): while there
    are any, no token can be called unclaimed.
    """

    keys: frozenset[str]
    spare_after: datetime | None = None
    unsettled: int = 0


class VaultError(Exception):
    """Base of the adapter's errors. ``error_class`` is a short, safe code for logs, metrics and the ledger;
    the message names what failed (operation, secret name, key name) and never contains a secret value,
    a token, or text echoed from Vault's response."""

    def __init__(self, error_class: str, message: str) -> None:
        super().__init__(message)
        self.error_class = error_class
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(error_class={self.error_class!r}, message={self.message!r})"


class VaultUnavailable(VaultError):
    """Vault could not answer: down, sealed, timing out, 5xx, or the broker cannot log in. The broker answers
    503 and retries later; nothing is granted."""


class VaultRejected(VaultError):
    """Vault answered and refused: permission denied, path or key missing, bad policy, credential gone.
    Usually a misconfigured secret: the broker answers 502 (or a clear 4xx)."""


class SecretBackend(Protocol):
    def issue(
        self, spec: SecretSpec, *, lease_id: str, ttl: timedelta, max_ttl: timedelta
    ) -> IssuedCredential:
        """Obtain a credential for the Transom lease ``lease_id`` (whose row exists already, invariant 2).

        ``ttl`` is the lease's time from now, ``max_ttl`` the latest end the lease could reach (from now);
        Vault is told both where the kind supports it, so it ends the credential itself if Transom cannot.
        """
        ...

    def renew(self, handle: VaultHandle, *, ttl: timedelta) -> timedelta | None:
        """Move the credential's end to ``ttl`` from now; returns what Vault granted (None for kv).
        A credential that is already gone raises ``VaultRejected`` with error_class ``not_found``."""
        ...

    def revoke(self, handle: VaultHandle) -> None:
        """Revoke at Vault. Idempotent: a credential already revoked or expired counts as revoked."""
        ...

    def health(self) -> None:
        """Return when Vault is reachable, unsealed and accepts the broker's credentials; else raise
        ``VaultUnavailable``."""
        ...

    def token_role_policies(self) -> TokenRolePolicies:
        """The token role's allowed policies; ``VaultUnavailable``/``VaultRejected`` when Vault cannot say."""
        ...

    def revoke_by_lease_id(self, lease_id: str) -> int:
        """Crash recovery for a token lease whose handle was never stored: revoke every token of the broker's
        role that no live lease claims, that of ``lease_id`` among them (Vault offers no narrow way to find a
        token by its metadata); returns how many were revoked. ``VaultUnavailable`` (``recovery_deferred``)
        while live rows hold tokens without their Vault lease id.

        Dynamic credentials cannot be found this way (Vault keeps no caller metadata on a secrets-engine
        lease); an orphaned one ends with its Vault lease TTL, which is why the engine's role should have a
        short ``default_ttl`` (issue renews it to the Transom lease's time right away anyway).
        """
        ...
