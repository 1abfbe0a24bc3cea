"""``token`` secrets through the broker's Vault token role, and nothing else's tokens (issue 18).

What Vault enforces, per config/vault/transom-broker.hcl (verified against OpenBao):

- Issue: ``auth/token/create/<role>`` without sudo: the role's ``allowed_policies`` bound every token (a
  ``super-admin`` policy is refused by Vault), ``orphan=true`` keeps the CI token alive when the broker's own
  login token ends (a non-orphan answer is revoked and refused).
- Each token has a Vault lease ``auth/token/create/<role>/h...`` (an HMAC of the token under Vault's own
  salt: the broker cannot compute it). Vault stamps the token and its lease with the same ``issue_time``,
  which the broker reads right after issue by looking the fresh token up by value (``auth/token/lookup``:
  only a holder of the token can). The lease itself is found by listing the role's leases (LIST with sudo on
  exactly that prefix) and looking up the ones not seen yet (``sys/leases/lookup``, ``lease_id`` restricted
  to the prefix). The listing grows with the number of live tokens, so ``deferred=True`` (the broker's
  choice, issue 14) keeps it off the request path: the handle then stores a *pending reference*,
  ``auth/token/create/<role>/@<issue_time>`` (``@`` is never in a lease key), and the listing happens only
  when a token must be revoked or recovery sweeps, once for many (the process remembers every lease's issue
  time). ``deferred=False`` finds the lease at issue, as before.
- Revoke: ``sys/leases/revoke/auth/token/create/<role>/*``: a path only the role's tokens live under, so an
  unrelated token cannot be revoked. Renew: ``auth/token/renew-accessor`` (Vault refuses to renew a token
  through ``sys/leases``). OpenBao renews a role's token up to the ROLE's ``token_explicit_max_ttl``, not the
  token's own, so each token also gets the ``transom-token-guard`` policy: the job cannot renew itself, and
  only the broker renews, as far as the lease's window and freezes allow (docs/API.md, ``token``).
- Crash recovery (``sweep``): Vault offers no narrow way to read a token's metadata, so a token whose lease id
  was never stored is found by exclusion: every lease of the role that no live Transom lease claims is
  revoked. The listing comes first and the claims after, so a token in the listing was created after its
  write-ahead row (invariant 2) and that row is visible to the claims; tokens of issues still in flight
  (``spare_after``) are spared, and rows that hold a token without its lease id defer the sweep.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from app.vault.port import (
    TOKEN_GUARD_POLICY,
    IssuedCredential,
    SecretSpec,
    TokenClaims,
    TokenRolePolicies,
    VaultError,
    VaultHandle,
    VaultRejected,
    VaultUnavailable,
)
from app.vault.wire import granted, seconds, section, vault_path

Call = Callable[..., dict[str, Any]]  # HvacBackend._call: (method, path, body=None, *, label=None)


CLOCK_MARGIN = timedelta(seconds=30)  # how far this process's clock may be from Vault's
LOOKUP_THREADS = 8  # leases looked up at once when a listing finds many unknown ones
PENDING = "@"  # a handle's lease reference "<prefix>/@<issue_time>": the lease is found when needed


class RoleTokens:
    def __init__(self, call: Call, role: str, *, deferred: bool = False) -> None:
        self._call = call
        self.role = vault_path(role)
        self._prefix = f"auth/token/create/{self.role}"
        self._deferred = deferred
        self._issue_times: dict[str, str] = {}  # lease key -> issue_time, of the leases seen so far
        self._keys: dict[str, str] = {}  # issue_time -> lease key, the same leases
        self._lock = threading.Lock()
        self._refreshing = threading.Lock()  # one listing at a time; the others then find its results
        self._listed_at: datetime | None = None  # when the latest complete listing began (this clock)

    def policies(self) -> TokenRolePolicies:
        role = section(self._call("GET", f"auth/token/roles/{self.role}"), "data")
        lists = [role.get(k) for k in ("allowed_policies", "allowed_policies_glob", "disallowed_policies")]
        allowed, globs, disallowed = (tuple(map(str, v)) if isinstance(v, list) else () for v in lists)
        return TokenRolePolicies(self.role, allowed, globs, disallowed)

    def issue(self, spec: SecretSpec, lease_id: str, ttl: timedelta, max_ttl: timedelta) -> IssuedCredential:
        if not spec.policies:  # SecretSpec refuses this too: Vault would give the role's or broker's policies
            raise VaultRejected("invalid_spec", f"token secret {spec.name!r} names no policy")
        request = {
            "policies": [*spec.policies, TOKEN_GUARD_POLICY],
            "meta": {"transom_lease": lease_id, "transom_secret": spec.name},
            "display_name": f"transom-{lease_id}",
            "ttl": f"{seconds(ttl, 'ttl')}s",
            "explicit_max_ttl": f"{seconds(max_ttl, 'max_ttl')}s",
            "renewable": True,
            "no_default_policy": False,
            "num_uses": spec.num_uses,
            "type": "service",
        }
        body = self._call("POST", self._prefix, request, label=f"token for secret {spec.name!r}")
        auth = section(body, "auth")
        token, accessor = auth.get("client_token"), auth.get("accessor")
        if not (isinstance(token, str) and token and isinstance(accessor, str) and accessor):
            raise VaultUnavailable("bad_response", "Vault's token response lacks the token or its accessor")
        try:
            if auth.get("orphan") is not True:  # a child of the login token would die with it
                raise VaultRejected("role_not_orphan", f"token role {self.role!r} must set orphan=true")
            key = self._pending(token) if self._deferred else self._lease_of(token)
        except VaultError:
            with contextlib.suppress(VaultError):  # never leave a token Transom cannot find again
                self._call("POST", "auth/token/revoke", {"token": token}, label="auth/token/revoke")
            raise
        return IssuedCredential(
            VaultHandle("token", accessor=accessor, lease_id=key),
            {"token": token, "accessor": accessor},
            granted(auth.get("lease_duration")),
        )

    def revoke(self, handle: VaultHandle) -> None:
        if handle.lease_id is None:  # a row from before issue 18: by accessor (not in the shipped policy)
            self._call("POST", "auth/token/revoke-accessor", {"accessor": handle.accessor})
            return
        issue_time = self._pending_issue_time(handle.lease_id)
        if issue_time is None:
            self._revoke_lease(handle.lease_id)
            return
        key = self._key_issued_at(issue_time)
        if key is None:  # no lease of the role was issued then: the token has ended (expired or revoked)
            raise VaultRejected("not_found", "the token's Vault lease is gone")
        self._revoke_lease(f"{self._prefix}/{key}")

    def _revoke_lease(self, lease: str) -> None:
        if not lease.startswith(f"{self._prefix}/"):
            raise VaultRejected("invalid_handle", "the token's Vault lease is not under the broker's role")
        self._call("PUT", f"sys/leases/revoke/{vault_path(lease)}", label="sys/leases/revoke")

    def sweep(self, claims_of: Callable[[], TokenClaims]) -> int:
        """Revoke every lease of the role that no live Transom lease claims; returns how many."""
        keys = self._list()
        claims = claims_of()  # after the listing: see the module docstring
        if claims.unsettled:
            raise VaultUnavailable(
                "recovery_deferred",
                f"{claims.unsettled} token lease(s) hold a token without its Vault lease id; recovery waits",
            )
        pending = {t for t in map(self._pending_issue_time, claims.keys) if t is not None}
        revoked = 0
        for key in keys:
            lease = f"{self._prefix}/{key}"
            if lease in claims.keys:
                continue
            if pending and self._issue_time(key) in pending:
                continue  # claimed by a lease whose handle names it by issue time
            if claims.spare_after is not None:
                issued = self._issue_time(key)
                if issued is None or _parse_instant(issued) >= claims.spare_after:
                    continue  # gone meanwhile, or may belong to an issue still in flight
            self._revoke_lease(lease)
            revoked += 1
        return revoked

    # -- finding a token's Vault lease ---------------------------------------------------------------------

    def _token_issue_time(self, token: str) -> str:
        body = self._call("POST", "auth/token/lookup", {"token": token}, label="auth/token/lookup")
        issue_time = section(body, "data").get("issue_time")
        if not isinstance(issue_time, str) or not issue_time:
            raise VaultUnavailable("bad_response", "Vault's token lookup lacks its issue time")
        return issue_time

    def _pending(self, token: str) -> str:
        return f"{self._prefix}/{PENDING}{self._token_issue_time(token)}"

    def _pending_issue_time(self, reference: str) -> str | None:
        """The issue time a pending reference names; None for a Vault lease id."""
        head, _, issue_time = reference.rpartition(f"/{PENDING}")
        return issue_time if head == self._prefix and issue_time else None

    def _key_issued_at(self, issue_time: str) -> str | None:
        """The role's lease issued at ``issue_time``: remembered, or found by one listing for everyone.

        A lease exists from its token's creation until the token ends, and a complete listing (every key
        looked up) that began after ``issue_time`` saw it if it was still there; so a lease issued before the
        latest such listing (by a margin for the clocks) and not remembered has ended, and is not listed for
        again: revoking many tokens Vault has already expired costs one listing, not one each."""
        key = self._keys.get(issue_time)
        if key is not None:
            return key
        issued = _parse_instant(issue_time)
        with self._refreshing:
            key = self._keys.get(issue_time)  # another thread's listing may have found it meanwhile
            if key is None and not (self._listed_at is not None and issued < self._listed_at - CLOCK_MARGIN):
                began = datetime.now(UTC)
                unknown = [k for k in self._list() if k not in self._issue_times]
                with ThreadPoolExecutor(LOOKUP_THREADS) as pool:
                    list(pool.map(self._issue_time, unknown))
                self._listed_at = began
                key = self._keys.get(issue_time)
        return key

    def _lease_of(self, token: str) -> str:
        issue_time = self._token_issue_time(token)
        found = [key for key in self._list() if self._issue_time(key) == issue_time]
        if len(found) != 1:
            raise VaultUnavailable(
                "lease_not_found", "cannot find the new token's lease under the token role"
            )
        return f"{self._prefix}/{found[0]}"

    def _list(self) -> list[str]:
        path = f"sys/leases/lookup/{self._prefix}/?list=true"
        try:
            body = self._call("GET", path, label=f"LIST sys/leases/lookup/{self._prefix}/")
        except VaultRejected as exc:
            if exc.error_class != "invalid_path":
                raise
            body = {}  # Vault answers 404 to a LIST with nothing under the prefix
        keys = [str(k) for k in section(body, "data").get("keys") or []]
        with self._lock:  # forget leases that are gone
            for gone in set(self._issue_times) - set(keys):
                self._keys.pop(self._issue_times.pop(gone), None)
        return keys

    def _issue_time(self, key: str) -> str | None:
        known = self._issue_times.get(key)
        if known is not None:
            return known
        try:
            body = self._call(
                "PUT", "sys/leases/lookup", {"lease_id": f"{self._prefix}/{key}"}, label="sys/leases/lookup"
            )
        except VaultRejected as exc:
            if exc.error_class in ("not_found", "invalid_request"):  # ended since the listing
                return None
            raise
        issue_time = section(body, "data").get("issue_time")
        if isinstance(issue_time, str):
            with self._lock:
                self._issue_times[key] = issue_time
                self._keys[issue_time] = key
            return issue_time
        return None


def _parse_instant(text: str) -> datetime:
    """Vault's RFC 3339 instants carry nanoseconds, which ``fromisoformat`` does not take: cut to micro."""
    head, _, tail = text.partition(".")
    digits = "".join(c for c in tail if c.isdigit())
    zone = tail[len(digits) :] or "+00:00"
    return datetime.fromisoformat(f"{head}.{(digits + '000000')[:6]}{zone.replace('Z', '+00:00')}")
