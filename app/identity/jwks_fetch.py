"""The HTTP fetcher behind the JWKS cache: GET one JSON object from an issuer, defensively.

Short timeouts and a total deadline, a size cap, no compressed bodies, and redirects only within the same
scheme, host and port: an issuer that is slow, huge or redirects elsewhere fails the fetch, not the broker.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

FetchJson = Callable[[str], dict[str, Any]]


class FetchError(Exception):
    """A discovery document or JWKS could not be had (network, status, size, shape)."""


class HttpFetcher:
    """GET a JSON object over HTTP(S) with short timeouts, a size cap and same-origin redirects only."""

    def __init__(
        self,
        *,
        connect_timeout: float = 3.0,
        read_timeout: float = 5.0,
        total_timeout: float = 10.0,
        max_bytes: int = 256 * 1024,
        max_redirects: int = 3,
    ) -> None:
        self._timeouts = (connect_timeout, read_timeout)
        self._total = total_timeout
        self._max_bytes = max_bytes
        self._max_redirects = max_redirects

    def __call__(self, url: str) -> dict[str, Any]:
        origin = _origin(url)
        deadline = time.monotonic() + self._total
        current = url
        for _ in range(self._max_redirects + 1):
            with requests.Session() as session:
                response = session.get(
                    current,
                    timeout=self._timeouts,
                    allow_redirects=False,
                    stream=True,
                    headers={"Accept": "application/json", "Accept-Encoding": "identity"},
                )
                with response:
                    if response.is_redirect:
                        target = urljoin(current, response.headers.get("Location", ""))
                        if _origin(target) != origin:
                            raise FetchError("refused a redirect to another scheme or host")
                        current = target
                        continue
                    if response.status_code != 200:
                        raise FetchError(f"HTTP {response.status_code} from {_shown(current)}")
                    return _json_object(self._read_capped(response, deadline))
        raise FetchError("too many redirects")

    def _read_capped(self, response: requests.Response, deadline: float) -> bytes:
        declared = response.headers.get("Content-Length")
        if declared is not None and declared.isdigit() and int(declared) > self._max_bytes:
            raise FetchError(f"response larger than {self._max_bytes} bytes")
        if response.headers.get("Content-Encoding", "identity").lower() not in ("identity", ""):
            raise FetchError("compressed responses are refused")  # we asked for identity; no bombs
        body = bytearray()
        while chunk := response.raw.read1(16 * 1024, decode_content=False):  # returns what has arrived
            body += chunk
            if len(body) > self._max_bytes:
                raise FetchError(f"response larger than {self._max_bytes} bytes")
            if time.monotonic() > deadline:
                raise FetchError("response too slow")
        return bytes(body)


def _origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchError("only absolute http(s) URLs are fetched")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise FetchError("bad port in URL") from exc
    return parts.scheme, parts.hostname.lower(), port


def _shown(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise FetchError("the response is not JSON") from exc
    if not isinstance(value, dict):
        raise FetchError("the response is not a JSON object")
    return value
