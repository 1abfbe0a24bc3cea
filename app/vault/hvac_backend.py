"""``SecretBackend`` against a real Vault/OpenBao, through an hvac adapter (``transport``: hvac's adapter
interface over one urllib3 pool per process; it and this module are the only ones that import hvac).

How it talks to Vault: explicit HTTP paths, one per operation, so the code reads like
``config/vault/transom-broker.hcl``, typed. hvac's high-level helpers are left aside on purpose: their stubs
are mostly untyped, their exceptions do not say the HTTP status (405/412 end up as ``UnexpectedError``) and
their messages echo Vault's response text. Every request goes through ``_send``/``_request``, which map
transport errors and HTTP statuses to ``VaultUnavailable`` or ``VaultRejected`` with a fixed, scrubbed
message. The adapter is built without a token and each request carries one explicitly, so an AppRole
re-login on one thread never races a request on another, and nothing is read from ``VAULT_TOKEN`` or
``~/.vault-token``.

Decisions per kind (docs/API.md, "Secrets (admin)"):

- ``kv``: KV v2 read of ``{mount}/data/{path}``; a requested key that is missing is ``VaultRejected``
  ("key_not_found", naming the key). Nothing to renew or revoke at Vault.
- ``token``: ``auth/token/create/<token_role>``: the role (``orphan=true``, ``allowed_policies``,
  ``token_explicit_max_ttl``) is enforced by Vault, so the broker cannot mint a policy the deployer did not
  list. Orphan, so revoking the broker's login token never takes the CI job's tokens with it (a non-orphan
  answer is revoked and refused); type ``service`` (batch tokens have no accessor); ``ttl`` = lease time;
  ``explicit_max_ttl`` = the latest instant the lease can reach (docs/API.md, "Leases"); the token cannot
  renew itself (``transom-token-guard``); ``default`` policy kept;
  ``meta={"transom_lease", "transom_secret"}``, ``display_name="transom-<lease id>"``. Handle: the accessor
  and the token's Vault lease id (or, deferred, its issue time: ``role_tokens``); renew by accessor, revoke by
  that lease (only the role's), both idempotent.
- ``dynamic``: read at ``path``; a response without a lease id is refused (Transom could never revoke it).
  The Vault lease is renewed to the lease time right away (``sys/leases/renew/<id>``), so the credential ends
  with the Transom lease where the engine supports it; if that renewal fails, the fresh lease is revoked
  before the error is raised. Renew/revoke by ``sys/leases/{renew,revoke}/<id>``: the path form lets the
  broker's policy limit which engines' leases it may touch.

``token`` lives in ``role_tokens`` (issue, revoke, and crash recovery by exclusion: ``revoke_by_lease_id``
asks ``token_claims``, wired by the runtime from the leases table, which Vault leases Transom still claims).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Final, assert_never

from app.vault.port import (
    IssuedCredential,
    SecretSpec,
    TokenClaims,
    TokenRolePolicies,
    VaultError,
    VaultHandle,
    VaultRejected,
    VaultUnavailable,
)
from app.vault.role_tokens import RoleTokens
from app.vault.transport import PooledAdapter, TransportError, VaultResponse
from app.vault.wire import granted, require, seconds, section, vault_path

POOL_SIZE: Final = 16  # the broker serves requests on threads; one pooled connection per thread
_RELOGIN_AT: Final = 0.8  # log in again once 80% of the login token's TTL has passed

# HTTP status -> (error_class, rejected?); another 4xx is rejected, anything else unavailable.
_STATUS: Final[dict[int, tuple[str, bool]]] = {
    400: ("invalid_request", True),
    401: ("unauthorized", True),
    403: ("forbidden", True),
    404: ("invalid_path", True),
    405: ("unsupported_operation", True),
    412: ("precondition_failed", False),  # performance standby not caught up yet: retry
    429: ("rate_limited", False),
    500: ("internal_error", False),
    501: ("not_initialized", False),
    502: ("bad_gateway", False),
    503: ("vault_down", False),  # sealed, or no active node
    504: ("gateway_timeout", False),
}
# Vault's 400 texts for "that accessor / lease does not exist (any more)": matched, never echoed. "token not
# found": revoke-accessor when the token's own TTL ends between Vault's accessor and token lookups.
_GONE_MARKERS: Final = ("invalid accessor", "token not found", "lease not found", "invalid lease")


class HvacBackend:
    """``SecretBackend`` over hvac. Thread-safe; ``close()`` (or ``with``) releases the connection pool.

    Authenticates with a fixed ``token``, or by AppRole (``role_id`` + ``secret_id``): logged in lazily, again
    before the login token's TTL runs out, and again when Vault answers 403 while the token no longer looks
    itself up (expired or revoked), after which the operation is retried once. Re-login reuses ``secret_id``,
    so the AppRole role must allow it (``secret_id_num_uses=0`` or enough uses). ``timeout`` (seconds) bounds
    each request; ``verify`` is False, True or a CA bundle path; ``approle_mount``: where AppRole is mounted.
    ``defer_token_leases``: a token's handle names its Vault lease by issue time, found when it is revoked
    (``role_tokens``): two Vault calls per issue instead of a listing that grows with the live tokens.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        role_id: str | None = None,
        secret_id: str | None = None,
        timeout: float = 5.0,
        namespace: str | None = None,
        verify: bool | str = True,
        approle_mount: str = "approle",
        token_role: str = "transom-lease",  # noqa: S107 - a role name, not a secret
        token_claims: Callable[[], TokenClaims] | None = None,
        defer_token_leases: bool = False,
    ) -> None:
        if bool(token) == bool(role_id and secret_id) or bool(role_id) != bool(secret_id):
            raise ValueError("give either token, or role_id and secret_id")
        self._timeout = timeout
        self._role_id = role_id
        self._secret_id = secret_id
        self._login_path = f"auth/{vault_path(approle_mount)}/login"
        self._tokens = RoleTokens(self._call, token_role, deferred=defer_token_leases)
        self._token_claims = token_claims
        self._token = token
        self._relogin_deadline: float | None = None  # monotonic; None: no proactive re-login needed
        self._login_lock = threading.Lock()
        self._http = PooledAdapter(
            url, timeout=timeout, pool_size=POOL_SIZE, namespace=namespace, verify=verify
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> HvacBackend:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- SecretBackend -------------------------------------------------------------------------------------

    def issue(
        self, spec: SecretSpec, *, lease_id: str, ttl: timedelta, max_ttl: timedelta
    ) -> IssuedCredential:
        if ttl > max_ttl:
            raise ValueError("ttl must not exceed max_ttl")
        if spec.kind == "kv":
            return self._issue_kv(spec)
        if spec.kind == "token":
            return self._tokens.issue(spec, lease_id, ttl, max_ttl)
        if spec.kind == "dynamic":
            return self._issue_dynamic(spec, ttl)
        assert_never(spec.kind)

    def renew(self, handle: VaultHandle, *, ttl: timedelta) -> timedelta | None:
        increment = seconds(ttl, "ttl")
        if handle.kind == "kv":
            return None
        if handle.kind == "token":
            body = self._call(
                "POST", "auth/token/renew-accessor", {"accessor": handle.accessor, "increment": increment}
            )
            return granted(section(body, "auth").get("lease_duration"))
        if handle.kind == "dynamic":
            return self._renew_lease(require(handle.lease_id), increment)
        assert_never(handle.kind)

    def revoke(self, handle: VaultHandle) -> None:
        try:
            if handle.kind == "token":
                self._tokens.revoke(handle)
            elif handle.kind == "dynamic":
                self._call(
                    "PUT",
                    f"sys/leases/revoke/{vault_path(require(handle.lease_id))}",
                    label="sys/leases/revoke",
                )
        except VaultRejected as exc:
            if exc.error_class != "not_found":
                raise

    def health(self) -> None:
        path = "sys/health?standbyok=true&perfstandbyok=true"
        status = self._request("GET", path, None, None, "GET sys/health").status_code
        if status != 200:
            reason = {503: "sealed", 501: "not_initialized"}.get(status, "unhealthy")
            raise VaultUnavailable(reason, f"Vault health check failed ({reason}, HTTP {status})")
        try:
            self._call("GET", "auth/token/lookup-self")
        except VaultRejected as exc:
            raise VaultUnavailable("auth_failed", "Vault does not accept the broker's credentials") from exc

    def token_role_policies(self) -> TokenRolePolicies:
        return self._tokens.policies()

    def revoke_by_lease_id(self, lease_id: str) -> int:
        if self._token_claims is None:
            raise VaultUnavailable("recovery_unavailable", "crash recovery needs the leases' token claims")
        return self._tokens.sweep(self._token_claims)

    # -- kinds ---------------------------------------------------------------------------------------------

    def _issue_kv(self, spec: SecretSpec) -> IssuedCredential:
        path = f"{vault_path(require(spec.mount))}/data/{vault_path(require(spec.path))}"
        body = self._call("GET", path, label=f"{path} for secret {spec.name!r}")
        values = section(section(body, "data"), "data")
        if spec.keys is not None:
            missing = [key for key in spec.keys if key not in values]
            if missing:
                raise VaultRejected(
                    "key_not_found", f"secret {spec.name!r}: key {missing[0]!r} not found in Vault"
                )
            values = {key: values[key] for key in spec.keys}
        return IssuedCredential(VaultHandle("kv"), dict(values), None)

    def _issue_dynamic(self, spec: SecretSpec, ttl: timedelta) -> IssuedCredential:
        path = vault_path(require(spec.path))
        body = self._call("GET", path, label=f"{path} for secret {spec.name!r}")
        vault_lease = body.get("lease_id")
        if not (isinstance(vault_lease, str) and vault_lease):
            raise VaultRejected(
                "not_leased", f"secret {spec.name!r}: Vault returned no lease to revoke later"
            )
        handle = VaultHandle("dynamic", lease_id=vault_lease)
        given = granted(body.get("lease_duration"))
        if body.get("renewable") is True:
            try:
                given = self._renew_lease(vault_lease, seconds(ttl, "ttl"))
            except VaultError:
                # Don't leave a credential behind that Transom will never hear of; should the revocation
                # fail too, its Vault TTL ends it. The renewal error is what the caller must see.
                with contextlib.suppress(VaultError):
                    self.revoke(handle)
                raise
        return IssuedCredential(handle, dict(section(body, "data")), given)

    def _renew_lease(self, vault_lease: str, increment: int) -> timedelta | None:
        body = self._call(
            "PUT",
            f"sys/leases/renew/{vault_path(vault_lease)}",
            {"increment": increment},
            label="sys/leases/renew",
        )
        return granted(body.get("lease_duration"))

    def call(
        self, method: str, path: str, body: dict[str, Any] | None = None, *, label: str | None = None
    ) -> dict[str, Any]:
        """An authenticated request for the broker's other uses of Vault (the ledger's transit key)."""
        return self._call(method, path, body, label=label)

    # -- authentication ------------------------------------------------------------------------------------

    def _current_token(self) -> str:
        if self._role_id is None:
            return require(self._token)
        with self._login_lock:
            deadline = self._relogin_deadline
            if self._token is None or (deadline is not None and time.monotonic() >= deadline):
                self._login()
            return require(self._token)

    def _login(self) -> None:
        """AppRole login; the caller holds ``_login_lock``."""
        started = time.monotonic()
        try:
            body = self._send(
                "POST", self._login_path, None, {"role_id": self._role_id, "secret_id": self._secret_id}
            )
        except VaultRejected as exc:
            raise VaultUnavailable("auth_failed", "AppRole login to Vault was refused") from exc
        auth = section(body, "auth")
        token = auth.get("client_token")
        if not (isinstance(token, str) and token):
            raise VaultUnavailable("bad_response", "Vault's login response lacks a token")
        lease = auth.get("lease_duration")
        self._token = token
        self._relogin_deadline = (
            started + _RELOGIN_AT * lease if isinstance(lease, int) and lease > 0 else None
        )

    def _token_is_dead(self, token: str) -> bool:
        try:
            self._send("GET", "auth/token/lookup-self", token, None)
        except VaultRejected as exc:
            return exc.error_class == "forbidden"
        return False

    def _call(
        self, method: str, path: str, body: dict[str, Any] | None = None, *, label: str | None = None
    ) -> dict[str, Any]:
        """An authenticated request; under AppRole, one re-login and retry when the token has died."""
        token = self._current_token()
        try:
            return self._send(method, path, token, body, label=label)
        except VaultRejected as exc:
            if exc.error_class != "forbidden" or self._role_id is None or not self._token_is_dead(token):
                raise
        with self._login_lock:
            if self._token == token:  # no other thread has logged in again meanwhile
                self._login()
        return self._send(method, path, self._current_token(), body, label=label)

    # -- transport -----------------------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        token: str | None,
        body: dict[str, Any] | None,
        *,
        label: str | None = None,
    ) -> dict[str, Any]:
        """One request; the JSON body (``{}`` when empty), or ``VaultRejected``/``VaultUnavailable``.

        Messages are built from ``label`` (default: the path; lease ids are left out) and the status only:
        Vault's error text can echo request data, so it is matched against known markers, never passed on.
        """
        operation = f"{method} {label or path.split('?', 1)[0]}"
        response = self._request(method, path, token, body, operation)
        status = response.status_code
        if response.ok:
            if not response.content:
                return {}
            try:
                parsed = response.json()
            except ValueError as exc:
                raise VaultUnavailable("bad_response", f"Vault sent no JSON: {operation}") from exc
            if not isinstance(parsed, dict):
                raise VaultUnavailable("bad_response", f"Vault sent unexpected JSON: {operation}")
            return parsed
        error_class, rejected = _STATUS.get(status, ("unexpected_status", 400 <= status < 500))
        if status == 400 and _mentions_gone(response):
            error_class = "not_found"
        if rejected:
            raise VaultRejected(error_class, f"Vault refused {operation}: {error_class} (HTTP {status})")
        raise VaultUnavailable(error_class, f"Vault failed {operation}: {error_class} (HTTP {status})")

    def _request(
        self, method: str, path: str, token: str | None, body: dict[str, Any] | None, operation: str
    ) -> VaultResponse:
        headers = {"X-Vault-Token": token} if token else None
        try:
            return self._http.request(method, f"/v1/{path}", headers=headers, json=body)
        except TransportError as exc:
            message = {
                "timeout": f"Vault did not answer in time: {operation}",
                "connection_error": f"cannot reach Vault: {operation}",
            }.get(exc.error_class, f"request to Vault failed: {operation}")
            raise VaultUnavailable(exc.error_class, message) from exc


def _mentions_gone(response: VaultResponse) -> bool:
    try:
        errors = response.json().get("errors")
    except (ValueError, AttributeError):
        return False
    text = " ".join(e for e in errors if isinstance(e, str)).lower() if isinstance(errors, list) else ""
    return any(marker in text for marker in _GONE_MARKERS)
