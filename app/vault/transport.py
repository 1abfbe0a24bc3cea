"""The broker's HTTP connection to Vault: an hvac adapter over one urllib3 pool per process.

hvac lets a client bring its own HTTP layer (``hvac.adapters.Adapter``); its own adapters ride on a
``requests`` session, whose per-call machinery (preparing the request, merging session settings, building the
response) cost about 0.3 ms of CPU per Vault call, twice per lease: about a tenth of the broker's CPU per
lease (docs/BENCHMARKS.md, issue 14). This adapter sends the same requests with urllib3, the library
``requests`` itself sends them with, and keeps what ``requests`` gave the broker:

- TLS verified by default, against ``REQUESTS_CA_BUNDLE`` or ``CURL_CA_BUNDLE`` when set, else certifi's
  bundle (``requests``' default); ``verify`` False turns verification off, a path names a CA file or folder;
- the environment's proxy settings (``HTTP(S)_PROXY``, ``NO_PROXY``), read once, with ``requests``' rules;
- one timeout for connecting and for each read; no retries; up to 5 redirects followed (a standby may send
  a client to the active node), keeping Vault's headers as ``requests`` did.

Transport failures raise :class:`TransportError` with a fixed ``error_class``: ``timeout``,
``connection_error`` or ``request_error``; what Vault answered is the caller's to judge (``hvac_backend``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import unquote

import certifi
import hvac.adapters
import requests.utils
import urllib3
import urllib3.exceptions
from urllib3.util import Retry, make_headers, parse_url

_RETRIES: Final = Retry(total=None, connect=0, read=0, status=0, other=0, redirect=5, raise_on_redirect=False)


if TYPE_CHECKING:  # generic in hvac's stubs only
    _Adapter = hvac.adapters.Adapter["VaultResponse"]
else:
    _Adapter = hvac.adapters.Adapter


class TransportError(Exception):
    def __init__(self, error_class: str) -> None:
        super().__init__(error_class)
        self.error_class = error_class


@dataclass(frozen=True, slots=True)
class VaultResponse:
    status_code: int
    content: bytes

    @property
    def ok(self) -> bool:
        return self.status_code < 400

    def json(self) -> Any:
        return json.loads(self.content)


class PooledAdapter(_Adapter):
    """Requests to ``base_uri``'s ``/v1/...`` paths on a pool of ``pool_size`` kept-alive connections.

    Thread-safe. No token of its own: each request names one (``X-Vault-Token``), so a re-login on one thread
    never races a request on another, and nothing is read from ``VAULT_TOKEN`` or ``~/.vault-token``."""

    def __init__(
        self,
        base_uri: str,
        *,
        timeout: float,
        pool_size: int,
        namespace: str | None = None,
        verify: bool | str = True,
    ) -> None:
        super().__init__(base_uri=base_uri, token=None, namespace=namespace)  # its session goes unused
        self._base = base_uri.rstrip("/")  # with any path the address has: requests go under it
        self._timeout = urllib3.Timeout(connect=timeout, read=timeout)
        self._headers = {"X-Vault-Request": "true"}  # hvac's guard against server-side request forgery
        if namespace:
            self._headers["X-Vault-Namespace"] = namespace
        self._pool = _pool_manager(base_uri, verify, pool_size)

    def close(self) -> None:
        self._pool.clear()
        super().close()

    def get_login_token(self, response: Any) -> str:
        return str(response.json()["auth"]["client_token"])

    def request(  # type: ignore[override]  # hvac's signature, typed
        self,
        method: str,
        url: str,
        headers: dict[str, str] | None = None,
        raise_exception: bool = False,
        *,
        json: dict[str, Any] | None = None,
    ) -> VaultResponse:
        """``url`` is the path under the base URI (``/v1/...``); ``json`` the body. HTTP errors are returned,
        not raised (``raise_exception`` is accepted for hvac's interface and ignored)."""
        sent = {**self._headers, **(headers or {})}
        body = None
        if json is not None:
            body = _encode(json)
            sent["Content-Type"] = "application/json"
        try:
            response = self._pool.urlopen(
                method.upper(),
                f"{self._base}{url}",
                body=body,
                headers=sent,
                retries=_RETRIES,
                timeout=self._timeout,
                preload_content=True,
            )
        except urllib3.exceptions.MaxRetryError as exc:
            raise TransportError(_error_class(exc.reason)) from exc
        except urllib3.exceptions.HTTPError as exc:
            raise TransportError(_error_class(exc)) from exc
        return VaultResponse(response.status, response.data)


def _encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, allow_nan=False).encode("utf-8")


def _error_class(cause: BaseException | None) -> str:
    # NewConnectionError is a ConnectTimeoutError to urllib3 (for compatibility): a refusal, not a timeout.
    if isinstance(cause, urllib3.exceptions.NewConnectionError):
        return "connection_error"
    if isinstance(cause, urllib3.exceptions.TimeoutError):
        return "timeout"
    if isinstance(
        cause,
        urllib3.exceptions.ProtocolError | urllib3.exceptions.SSLError | urllib3.exceptions.ProxyError,
    ):
        return "connection_error"
    return "request_error"


def _pool_manager(base_uri: str, verify: bool | str, pool_size: int) -> urllib3.PoolManager:
    """The pool for ``base_uri``, through the environment's proxy for it if there is one."""
    options: dict[str, Any] = {"num_pools": 2, "maxsize": pool_size, "retries": _RETRIES}
    if verify is False:
        options["cert_reqs"] = "CERT_NONE"
    else:
        bundle = verify if isinstance(verify, str) else _environment_bundle()
        options["cert_reqs"] = "CERT_REQUIRED"
        options["ca_cert_dir" if Path(bundle).is_dir() else "ca_certs"] = bundle
    proxy = requests.utils.select_proxy(base_uri, requests.utils.get_environ_proxies(base_uri))
    if proxy is None:
        return urllib3.PoolManager(**options)
    parsed = parse_url(proxy)
    if parsed.auth:
        user, _, password = parsed.auth.partition(":")
        options["proxy_headers"] = make_headers(proxy_basic_auth=f"{unquote(user)}:{unquote(password)}")
    return urllib3.ProxyManager(proxy, **options)


def _environment_bundle() -> str:
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or certifi.where()
