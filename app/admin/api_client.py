"""The broker's HTTP API as the admin commands use it: base URL, bearer token, timeouts, problem details.

Every admin command takes ``--url``/``TRANSOM_URL`` and ``--token``/``TRANSOM_TOKEN``
(:func:`broker_options`); without a URL or a token it stops with a usage error (exit 2), as ``transom lease``
does: there is no default broker to talk to by accident.

Every refusal the server sends (RFC 9457 problem JSON) becomes an :class:`ApiError`, a ``ClickException``
whose message is the problem's title, detail, field errors and reasons. The token is sent only in the
``Authorization`` header and appears in no message.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, TypeVar

import click
import requests

from app.client.base_url import base_url_problem

F = TypeVar("F", bound=Callable[..., Any])
TOKEN_PREFIX = "trn_"
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0
STREAM_READ_TIMEOUT = 120.0  # between two chunks of an export, not for the whole of it
PAGE_LIMIT = 500


class ApiError(click.ClickException):
    """The broker refused a request; ``status`` and ``problem`` are what it said."""

    def __init__(self, status: int, problem: Mapping[str, Any]) -> None:
        self.status = status
        self.problem = dict(problem)
        super().__init__(format_problem(status, problem))


def format_problem(status: int, problem: Mapping[str, Any]) -> str:
    title = problem.get("title") or "Error"
    lines = [f"{title} ({status})"]
    detail = problem.get("detail")
    if detail and detail != title:
        lines[0] += f": {detail}"
    lines += [f"  {field}: {message}" for field, message in flatten_errors(problem.get("errors"))]
    for reason in problem.get("reasons") or []:
        if isinstance(reason, Mapping):
            policy = f" [policy {reason['policy']}]" if reason.get("policy") else ""
            lines.append(f"  - {reason.get('code', '?')}: {reason.get('message', '')}{policy}")
    return "\n".join(lines)


def flatten_errors(errors: Any, prefix: str = "") -> list[tuple[str, str]]:
    """``{"runners": {"ids": ["bad"]}}`` as ``[("runners.ids", "bad")]``; list indexes join the path too."""
    if errors is None:
        return []
    if isinstance(errors, Mapping):
        flat: list[tuple[str, str]] = []
        for key, value in errors.items():
            flat += flatten_errors(value, f"{prefix}.{key}" if prefix else str(key))
        return flat
    if isinstance(errors, list) and all(isinstance(item, str) for item in errors):
        return [(prefix or "_schema", message) for message in errors]
    if isinstance(errors, list):
        return [pair for item in errors for pair in flatten_errors(item, prefix)]
    return [(prefix or "_schema", str(errors))]


class ApiClient:
    def __init__(self, base_url: str, token: str, *, session: requests.Session | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = session or requests.Session()
        self._session.headers["Authorization"] = f"Bearer {token}"
        self._session.headers["Accept"] = "application/json, application/problem+json"

    def __repr__(self) -> str:  # never show the token
        return f"ApiClient({self.base_url!r})"

    @classmethod
    def connect(cls, url: str | None, token: str | None, environ: Mapping[str, str]) -> ApiClient:
        """From ``--url``/``TRANSOM_URL`` and ``--token``/``TRANSOM_TOKEN`` (or ``TRANSOM_TOKEN_FILE``)."""
        if problem := base_url_problem(url):
            raise click.UsageError(problem)
        assert url is not None
        token = (token or "").strip()
        if not token and environ.get("TRANSOM_TOKEN_FILE"):
            try:
                token = Path(environ["TRANSOM_TOKEN_FILE"]).read_text().strip()
            except OSError as exc:
                raise click.UsageError(f"cannot read TRANSOM_TOKEN_FILE ({exc.strerror})") from None
        if not token:
            raise click.UsageError(
                "no broker token: TRANSOM_TOKEN is not set and no --token given "
                "(`transom tokens create --name NAME --role admin` prints one)."
            )
        if not token.startswith(TOKEN_PREFIX):
            raise click.UsageError(
                f"the broker token must start with {TOKEN_PREFIX} (TRANSOM_TOKEN, --token)."
            )
        return cls(url.strip(), token)

    # --- calls -----------------------------------------------------------------------------------------

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self._json(self._send("GET", path, params=params))

    def get_text(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        """A ``text/plain`` answer (a signed checkpoint) exactly as sent, decoded as UTF-8."""
        response = self._send("GET", path, params=params)
        try:
            return response.content.decode("utf-8")
        except UnicodeDecodeError:
            raise click.ClickException(f"the broker answered {path} with text that is not UTF-8") from None

    def post(self, path: str, body: Any) -> Any:
        return self._json(self._send("POST", path, body=body))

    def put(self, path: str, body: Any) -> Any:
        return self._json(self._send("PUT", path, body=body))

    def delete(self, path: str) -> None:
        self._send("DELETE", path)

    def post_with_status(self, path: str, body: Any) -> tuple[int, Any]:
        response = self._send("POST", path, body=body)
        return response.status_code, self._json(response)

    def list_all(
        self, path: str, params: Mapping[str, Any] | None = None, *, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Every item of a keyset-paginated list (or the first ``limit``), following ``next_cursor``."""
        items: list[dict[str, Any]] = []
        query = {k: v for k, v in (params or {}).items() if v is not None}
        cursor = None
        while True:
            page_size = PAGE_LIMIT if limit is None else min(PAGE_LIMIT, limit - len(items))
            page = self.get(path, {**query, "limit": page_size, **({"cursor": cursor} if cursor else {})})
            items += page["items"]
            cursor = page.get("next_cursor")
            if not cursor or (limit is not None and len(items) >= limit):
                return items

    def stream_to(self, path: str, params: Mapping[str, Any], out: IO[bytes]) -> int:
        """Write a streamed download to ``out`` as it arrives; the number of bytes written."""
        response = self._send("GET", path, params=params, stream=True)
        written = 0
        try:
            for chunk in _chunks(response):
                out.write(chunk)
                written += len(chunk)
        finally:
            response.close()
        return written

    # --- plumbing --------------------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        stream: bool = False,
    ) -> requests.Response:
        url = self.base_url + path
        timeout = (CONNECT_TIMEOUT, STREAM_READ_TIMEOUT if stream else READ_TIMEOUT)
        try:
            response = self._session.request(
                method,
                url,
                params={k: v for k, v in (params or {}).items() if v is not None},
                json=body,
                timeout=timeout,
                stream=stream,
                allow_redirects=False,  # a redirect elsewhere would carry the bearer along
            )
        except requests.Timeout:
            raise click.ClickException(f"the broker at {self.base_url} did not answer in time") from None
        except requests.RequestException as exc:
            raise click.ClickException(
                f"cannot reach the broker at {self.base_url} ({type(exc).__name__})"
            ) from None
        if response.status_code >= 400:
            raise ApiError(response.status_code, _problem_of(response))
        if 300 <= response.status_code < 400:
            raise click.ClickException(
                f"the broker answered {response.status_code} (a redirect); check TRANSOM_URL"
            )
        return response

    @staticmethod
    def _json(response: requests.Response) -> Any:
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise click.ClickException(
                f"the broker answered {response.status_code} with something that is not JSON "
                f"({response.headers.get('Content-Type', 'no content type')})"
            ) from None


def _problem_of(response: requests.Response) -> dict[str, Any]:
    content_type = response.headers.get("Content-Type", "")
    if "json" in content_type:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            return body
    # Not the broker's own answer (a proxy, a load balancer): say so rather than dump its page.
    return {
        "title": response.reason or "Error",
        "detail": f"the server answered with {content_type or 'no content type'}, not problem details",
    }


def _chunks(response: requests.Response) -> Iterator[bytes]:
    try:
        yield from response.iter_content(chunk_size=64 * 1024)
    except requests.RequestException as exc:
        raise click.ClickException(f"the download broke off ({type(exc).__name__})") from None


URL_HELP = "The broker's base URL, such as https://transom.example.com [env: TRANSOM_URL]."
TOKEN_HELP = (
    "A broker token (trn_...); prefer the variable, a command line is visible to other users "
    "[env: TRANSOM_TOKEN, or TRANSOM_TOKEN_FILE]."
)


def broker_options(command: F) -> F:
    """``--url`` and ``--token`` on an admin command, which receives the connected ``client`` instead."""

    @click.option("--url", envvar="TRANSOM_URL", metavar="URL", help=URL_HELP)
    @click.option("--token", envvar="TRANSOM_TOKEN", metavar="TOKEN", help=TOKEN_HELP)
    @functools.wraps(command)
    def connected(*args: Any, url: str | None, token: str | None, **kwargs: Any) -> Any:
        return command(*args, client=ApiClient.connect(url, token, os.environ), **kwargs)

    return connected  # type: ignore[return-value]
