"""Where a CI job's OIDC ID token comes from, fetched fresh for every broker call that needs one.

- GitHub Actions: ``ACTIONS_ID_TOKEN_REQUEST_URL`` + ``ACTIONS_ID_TOKEN_REQUEST_TOKEN`` (the job needs
  ``permissions: id-token: write``), asked for the broker's audience (``TRANSOM_AUDIENCE``).
- GitLab CI: an ``id_tokens:`` variable, ``TRANSOM_ID_TOKEN`` by default or any name by ``--token-env``.
  GitLab mints these once per job and a token obtains one lease, so a job that leases several secrets
  declares one ID token per secret and names them in ``--secret`` order (``--token-env`` repeated).
- Anything else: ``--token-file`` (read again at each call, so a refreshed file is picked up) or
  ``--token-command`` (run at each call; its stdout is the token).
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests

from app.client.errors import Unavailable, UsageError

GITLAB_DEFAULT_VARIABLE = "TRANSOM_ID_TOKEN"
GITHUB_URL_VARIABLE = "ACTIONS_ID_TOKEN_REQUEST_URL"
GITHUB_TOKEN_VARIABLE = "ACTIONS_ID_TOKEN_REQUEST_TOKEN"
FETCH_TIMEOUT = (5.0, 20.0)
COMMAND_TIMEOUT = 30.0


class TokenSource(Protocol):
    @property
    def description(self) -> str: ...

    def fetch(self) -> str:
        """A token to present now; raises UsageError or Unavailable."""
        ...


def _checked(token: str, description: str) -> str:
    token = token.strip()
    if not token:
        raise UsageError(f"the ID token from {description} is empty")
    return token


@dataclass(frozen=True)
class GithubActionsToken:
    request_url: str
    request_token: str
    audience: str | None
    session: requests.Session

    @property
    def description(self) -> str:
        return "GitHub Actions (ACTIONS_ID_TOKEN_REQUEST_URL)"

    def url(self) -> str:
        """The request URL with ``audience`` set (the runner's URL already carries ``api-version``)."""
        parts = urlsplit(self.request_url)
        query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "audience"]
        if self.audience:
            query.append(("audience", self.audience))
        return urlunsplit(parts._replace(query=urlencode(query)))

    def fetch(self) -> str:
        headers = {"Authorization": f"Bearer {self.request_token}", "Accept": "application/json"}
        try:
            response = self.session.get(self.url(), headers=headers, timeout=FETCH_TIMEOUT)
        except requests.RequestException as exc:
            raise Unavailable(f"cannot get an ID token from GitHub Actions ({type(exc).__name__})") from None
        if 400 <= response.status_code < 500:
            raise UsageError(
                f"GitHub Actions refused to issue an ID token (HTTP {response.status_code})",
                lines=["does the job have `permissions: id-token: write`?"],
            )
        if response.status_code != 200:
            raise Unavailable(f"GitHub Actions did not issue an ID token (HTTP {response.status_code})")
        try:
            value = response.json()["value"]
        except (ValueError, KeyError, TypeError):
            raise Unavailable("GitHub Actions answered without an ID token") from None
        if not isinstance(value, str):
            raise Unavailable("GitHub Actions answered without an ID token")
        return _checked(value, self.description)


@dataclass(frozen=True)
class EnvironmentToken:
    name: str
    environ: Mapping[str, str]

    @property
    def description(self) -> str:
        return f"the variable {self.name}"

    def fetch(self) -> str:
        if self.name not in self.environ:
            raise UsageError(
                f"the variable {self.name} is not set", lines=_gitlab_hint(self.name, self.environ)
            )
        return _checked(self.environ[self.name], self.description)


@dataclass(frozen=True)
class FileToken:
    path: Path

    @property
    def description(self) -> str:
        return f"the file {self.path}"

    def fetch(self) -> str:
        try:
            return _checked(self.path.read_text(encoding="utf-8"), self.description)
        except OSError as exc:
            raise UsageError(f"cannot read the ID token file {self.path} ({exc.strerror})") from None


@dataclass(frozen=True)
class CommandToken:
    argv: tuple[str, ...]

    @property
    def description(self) -> str:
        return f"the command {shlex.join(self.argv)!r}"

    def fetch(self) -> str:
        try:
            done = subprocess.run(  # noqa: S603 - the job's own token command, run without a shell
                self.argv,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=COMMAND_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise UsageError(f"cannot run {self.description} ({type(exc).__name__})") from None
        if done.returncode != 0:
            # Its stderr is the tool's own complaint; stdout (where a token would be) is never shown.
            said = [line for line in done.stderr.strip().splitlines()[-3:] if line]
            raise UsageError(f"{self.description} exited with status {done.returncode}", lines=said)
        return _checked(done.stdout, self.description)


@dataclass(frozen=True)
class TokenProvider:
    """The token for the i-th lease of this invocation (several only with repeated ``--token-env``)."""

    sources: tuple[TokenSource, ...]

    def token(self, index: int = 0) -> str:
        return self.sources[min(index, len(self.sources) - 1)].fetch()

    @property
    def description(self) -> str:
        return ", ".join(source.description for source in self.sources)


def discover(
    environ: Mapping[str, str],
    *,
    session: requests.Session,
    audience: str | None,
    token_file: str | None = None,
    token_envs: Sequence[str] = (),
    token_command: str | None = None,
) -> TokenProvider:
    """The job's token source: an explicit option wins, else GitHub Actions, else ``TRANSOM_ID_TOKEN``."""
    chosen = [flag for flag, given in _explicit(token_file, token_envs, token_command) if given]
    if len(chosen) > 1:
        raise UsageError(f"choose one of {', '.join(chosen)}")
    if token_file:
        return TokenProvider((FileToken(Path(token_file)),))
    if token_envs:
        return TokenProvider(tuple(EnvironmentToken(name, environ) for name in token_envs))
    if token_command:
        argv = tuple(shlex.split(token_command))
        if not argv:
            raise UsageError("--token-command is empty")
        return TokenProvider((CommandToken(argv),))
    if environ.get(GITHUB_URL_VARIABLE) and environ.get(GITHUB_TOKEN_VARIABLE):
        github = GithubActionsToken(
            environ[GITHUB_URL_VARIABLE], environ[GITHUB_TOKEN_VARIABLE], audience, session
        )
        return TokenProvider((github,))
    if GITLAB_DEFAULT_VARIABLE in environ:
        return TokenProvider((EnvironmentToken(GITLAB_DEFAULT_VARIABLE, environ),))
    lines = [
        "GitHub Actions: give the job `permissions: id-token: write`",
        f"GitLab CI: declare `id_tokens: {GITLAB_DEFAULT_VARIABLE}: aud: <audience>` (or --token-env NAME)",
        "elsewhere: --token-file PATH or --token-command CMD (TRANSOM_ID_TOKEN_COMMAND)",
    ]
    if environ.get("GITHUB_ACTIONS") == "true":
        lines.insert(0, f"this is GitHub Actions, but {GITHUB_URL_VARIABLE} is not set")
    raise UsageError("no OIDC ID token found for this job", lines=lines)


def _explicit(
    token_file: str | None, token_envs: Sequence[str], token_command: str | None
) -> list[tuple[str, bool]]:
    return [
        ("--token-file", bool(token_file)),
        ("--token-env", bool(token_envs)),
        ("--token-command", bool(token_command)),
    ]


def _gitlab_hint(name: str, environ: Mapping[str, str]) -> list[str]:
    if environ.get("GITLAB_CI") == "true":
        return [f"declare it in .gitlab-ci.yml: `id_tokens: {name}: aud: <the broker's audience>`"]
    return []
