"""`transom lease ...`: the CI client. Obtain, renew and release leases from inside a pipeline job.

Exit codes: 0 done (``exec``: the command's own status), 1 another failure, 2 bad usage or job setup,
3 denied by the broker, 4 the broker (or what it depends on) unavailable.
"""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import click
import requests

from app.client.approval_wait import ApprovalWait
from app.client.base_url import base_url_problem
from app.client.broker import BrokerClient, LeaseView
from app.client.errors import ClientError, LeaseEnded, UsageError
from app.client.execute import ExecPlan, check_command, run_exec
from app.client.leaseset import LeaseSet
from app.client.naming import EnvNaming
from app.client.output import (
    FORMATS,
    LEASE_IDS_VARIABLE,
    append_github_env,
    lease_ids,
    mask_commands,
    on_github_actions,
    render_dotenv,
    render_env,
    render_json,
)
from app.client.report import Reporter
from app.client.tokens import TokenProvider, discover
from app.decision.durations import parse_duration

F = TypeVar("F", bound=Callable[..., Any])
MIN_LEASE_SECONDS = 5  # the broker's minimum lease length (docs/API.md, "Leases")
_ID_SPLIT = re.compile(r"[\s,]+")


@dataclass
class Connection:
    broker: BrokerClient
    tokens: TokenProvider
    report: Reporter

    def lease_set(self, ttl: str | None, justification: str | None, approval_timeout: float) -> LeaseSet:
        """The leases one command holds, waiting on an approval by itself when the broker answers 202."""
        return LeaseSet(
            self.broker,
            self.tokens.token,
            self.report,
            ttl=ttl,
            justification=justification,
            approval_wait=ApprovalWait(approval_timeout, self.broker.base_url),
        )


def _connection_options(command: F, *, per: str = "--secret") -> F:
    options = [
        click.option(
            "--url",
            envvar="TRANSOM_URL",
            metavar="URL",
            help="The broker's base URL, such as https://transom.example.com [env: TRANSOM_URL].",
        ),
        click.option(
            "--audience",
            envvar="TRANSOM_AUDIENCE",
            help="The audience to ask GitHub Actions for (one of the issuer's) [env: TRANSOM_AUDIENCE].",
        ),
        click.option(
            "--token-file",
            envvar="TRANSOM_ID_TOKEN_FILE",
            help="Read the ID token from this file, again at every call [env: TRANSOM_ID_TOKEN_FILE].",
        ),
        click.option(
            "--token-env",
            multiple=True,
            help=f"Read the ID token from this variable (GitLab id_tokens); repeat: one per {per}.",
        ),
        click.option(
            "--token-command",
            envvar="TRANSOM_ID_TOKEN_COMMAND",
            help="Run this for every ID token; its stdout is the token [env: TRANSOM_ID_TOKEN_COMMAND].",
        ),
        click.option("--quiet", "-q", is_flag=True, help="Only warnings and errors on stderr."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _lease_id_connection_options(command: F) -> F:
    return _connection_options(command, per="LEASE_ID")


def _errors_to_exit_codes(command: F) -> F:
    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ClientError as error:
            Reporter(_stderr).error(error)
            raise SystemExit(error.exit_code) from None

    return wrapper  # type: ignore[return-value]


@contextmanager
def _connect(options: dict[str, Any]) -> Iterator[Connection]:
    url = options.pop("url")
    if problem := base_url_problem(url):
        raise UsageError(problem)
    report = Reporter(_stderr, quiet=options.pop("quiet"))
    with requests.Session() as session:
        tokens = discover(
            os.environ,
            session=session,
            audience=options.pop("audience"),
            token_file=options.pop("token_file"),
            token_envs=options.pop("token_env"),
            token_command=options.pop("token_command"),
        )
        yield Connection(BrokerClient(url, session), tokens, report)


def _stderr(line: str) -> None:
    click.echo(line, err=True)


def _stdout(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


def _check_ttl(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A lease length as the API takes it: ``90`` (seconds) or ``20m``, and in the range a lease may last."""
    if value is None:
        return None
    try:
        seconds = int(parse_duration(int(value) if value.isdigit() else value).total_seconds())
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if seconds < MIN_LEASE_SECONDS:
        raise click.BadParameter(
            f"{value} is too short: a lease lasts at least {MIN_LEASE_SECONDS}s "
            "(and at most its policy's max_ttl)"
        )
    return f"{seconds}s"


def _seconds(ctx: click.Context, param: click.Parameter, value: str) -> float:
    try:
        return parse_duration(value).total_seconds()
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _lease_ids(given: Sequence[str]) -> list[str]:
    ids = [part for item in given for part in _ID_SPLIT.split(item) if part]
    if not ids:
        ids = [part for part in _ID_SPLIT.split(os.environ.get(LEASE_IDS_VARIABLE, "")) if part]
    if not ids:
        raise UsageError(f"no lease id: pass LEASE_ID arguments or set {LEASE_IDS_VARIABLE}")
    return ids


secret_option = click.option(
    "--secret", "secrets", multiple=True, required=True, help="A secret to lease; repeat for several."
)
ttl_option = click.option(
    "--ttl",
    callback=_check_ttl,
    help="Lease length: seconds or e.g. 20m, at least 5s (default: the policy's).",
)
naming_options = [
    click.option(
        "--env-prefix",
        multiple=True,
        help="Prefix for variable names: PREFIX, or SECRET=PREFIX for one secret's values.",
    ),
    click.option(
        "--map", "maps", multiple=True, help="KEY=NAME or SECRET/KEY=NAME: the variable for one value."
    ),
]
approval_options = [
    click.option(
        "--justification",
        default=None,
        help="Ask people for a break-glass exception to the policy's windows and freezes, saying why.",
    ),
    click.option(
        "--approval-timeout",
        default="30m",
        show_default=True,
        callback=_seconds,
        help="How long to wait for people to approve a lease that needs it (then exit 3).",
    ),
]
idempotency_option = click.option(
    "--idempotency-key", help="Retrying with the same key returns the same lease (docs/API.md, Leases)."
)


def _with(options: list[Callable[[F], F]]) -> Callable[[F], F]:
    def apply(command: F) -> F:
        for option in reversed(options):
            command = option(command)
        return command

    return apply


@click.group()
def lease() -> None:
    """Obtain, renew and release leases from a CI job (exit codes: 2 usage, 3 denied, 4 unavailable)."""


@lease.command("exec", context_settings={"allow_interspersed_args": False})
@secret_option
@ttl_option
@_with(naming_options)
@idempotency_option
@_with(approval_options)
@click.option(
    "--grace",
    default="10s",
    show_default=True,
    callback=_seconds,
    help="After a signal, how long the command may take to stop before the leases are released anyway.",
)
@_connection_options
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@_errors_to_exit_codes
def exec_(
    secrets: tuple[str, ...],
    ttl: str | None,
    env_prefix: tuple[str, ...],
    maps: tuple[str, ...],
    idempotency_key: str | None,
    justification: str | None,
    approval_timeout: float,
    grace: float,
    command: tuple[str, ...],
    **options: Any,
) -> None:
    """Run COMMAND with the leased values in its environment; release every lease when it ends.

    \b
    transom lease exec --secret prod-db --ttl 20m -- ./deploy.sh

    Renews a lease at about 2/3 of its length while COMMAND runs, forwards SIGINT/SIGTERM to it, and exits
    with its status.
    """
    check_command(command)
    naming = EnvNaming.parse(secrets, env_prefix, maps)
    plan = ExecPlan(secrets, command, naming, grace=grace, idempotency_key=idempotency_key)
    with _connect(options) as conn:
        leases = conn.lease_set(ttl, justification, approval_timeout)
        status = run_exec(plan, leases, conn.report, os.environ, _stdout)
    raise SystemExit(status)


@lease.command("request")
@secret_option
@ttl_option
@_with(naming_options)
@idempotency_option
@_with(approval_options)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="env",
    show_default=True,
    help="How to hand on the values.",
)
@_connection_options
@_errors_to_exit_codes
def request(
    secrets: tuple[str, ...],
    ttl: str | None,
    env_prefix: tuple[str, ...],
    maps: tuple[str, ...],
    idempotency_key: str | None,
    justification: str | None,
    approval_timeout: float,
    fmt: str,
    **options: Any,
) -> None:
    """Obtain leases and hand on their values and ids (TRANSOM_LEASE_IDS) to the next steps.

    \b
    env:        eval "$(transom lease request --secret prod-db)"
    dotenv:     NAME="value" lines
    json:       {"leases": [...], "env": {...}}
    github-env: appended to $GITHUB_ENV for the job's later steps

    On GitHub Actions every value is masked (::add-mask::) before it is printed or written: on stdout for
    github-env, on stderr (also read by the runner) where stdout carries the values.
    """
    naming = EnvNaming.parse(secrets, env_prefix, maps)
    if fmt == "github-env" and not os.environ.get("GITHUB_ENV"):
        raise UsageError("--format github-env needs $GITHUB_ENV (set by GitHub Actions in every step)")
    with _connect(options) as conn:
        held = conn.lease_set(ttl, justification, approval_timeout)
        try:
            held.acquire(secrets, idempotency_key=idempotency_key, stop=lambda: False)
            variables = naming.environment(held.leases, os.environ)
            if LEASE_IDS_VARIABLE in variables:
                raise UsageError(f"a value would overwrite {LEASE_IDS_VARIABLE}; rename it with --map")
            _hand_on(fmt, held.leases, variables, conn.report)
        except BaseException:
            # Nothing was handed on (or not all of it): no one would release these leases.
            held.release_all()
            raise


def _hand_on(fmt: str, leases: list[LeaseView], variables: dict[str, str], report: Reporter) -> None:
    if on_github_actions(os.environ):
        # github-env leaves stdout to the job log: the masks go there. The other formats' stdout is data
        # (eval'd, redirected, piped to jq), where a mask line would break it and never reach the runner,
        # so their masks go to stderr, which the runner reads for workflow commands as well.
        emit = _stdout if fmt == "github-env" else _stderr
        for line in mask_commands(variables.values(), fmt):
            emit(line)
        sys.stderr.flush()
    everything = {**variables, LEASE_IDS_VARIABLE: lease_ids(os.environ.get(LEASE_IDS_VARIABLE), leases)}
    if fmt == "github-env":
        path = append_github_env(os.environ, everything)
        report.info(f"wrote {', '.join(everything)} to {path}")
    elif fmt == "dotenv":
        _stdout(render_dotenv(everything))
    elif fmt == "json":
        _stdout(render_json(leases, variables))
    else:
        _stdout(render_env(everything))


SHOW_HEADER = ("id", "secret", "status", "expires_at", "bounded_by")


def _show(fmt: str, leases: list[LeaseView]) -> None:
    """One tab-separated row per lease under a header (json: the leases as the broker sent them)."""
    if fmt == "json":
        _stdout(render_json(leases, {}))
        return
    rows = [SHOW_HEADER] + [
        (view.id, view.secret, view.status, view.until, view.raw.get("bounded_by") or "") for view in leases
    ]
    _stdout("".join("\t".join(row) + "\n" for row in rows))


format_option = click.option(
    "--format", "fmt", type=click.Choice(("text", "json")), default="text", show_default=True
)


def _each_lease(
    ids: list[str], call: Callable[[str, str], LeaseView], conn: Connection, *, ended_ok: bool = False
) -> list[LeaseView]:
    """Apply ``call`` to every lease, going on after a failure; raise the first failure at the end."""
    done: list[LeaseView] = []
    failures: list[ClientError] = []
    for index, lease_id in enumerate(ids):
        try:
            done.append(call(lease_id, conn.tokens.token(index)))
        except LeaseEnded as error:
            if not ended_ok:
                failures.append(error)
            else:
                conn.report.info(f"{lease_id} had already ended")
        except ClientError as error:
            failures.append(error)
    for later in failures[1:]:
        conn.report.error(later)
    if failures:
        raise failures[0]
    return done


@lease.command("renew")
@click.argument("lease_ids", nargs=-1)
@click.option(
    "--ttl",
    callback=_check_ttl,
    help="Renew for this long: seconds or e.g. 20m, at least 5s (default: the lease's current ttl).",
)
@format_option
@_lease_id_connection_options
@_errors_to_exit_codes
def renew(lease_ids: tuple[str, ...], ttl: str | None, fmt: str, **options: Any) -> None:
    """Renew leases (default: $TRANSOM_LEASE_IDS) with a fresh ID token.

    Each is renewed for as long as it was last granted (its ttl) unless --ttl says otherwise; the window,
    a freeze and the policy's max_ttl still bound it.
    """
    ids = _lease_ids(lease_ids)
    with _connect(options) as conn:

        def renew_one(lease_id: str, token: str) -> LeaseView:
            length = ttl or _current_ttl(conn.broker.show_lease(lease_id, token))
            return conn.broker.renew_lease(lease_id, token, ttl=length)

        _show(fmt, _each_lease(ids, renew_one, conn))


def _current_ttl(lease: LeaseView) -> str | None:
    """The length the lease was last granted, so a renewal keeps it (None: the broker's default)."""
    return f"{lease.ttl}s" if lease.ttl >= MIN_LEASE_SECONDS else None


@lease.command("release")
@click.argument("lease_ids", nargs=-1)
@format_option
@_lease_id_connection_options
@_errors_to_exit_codes
def release(lease_ids: tuple[str, ...], fmt: str, **options: Any) -> None:
    """Release leases (default: $TRANSOM_LEASE_IDS); one that already ended is fine."""
    ids = _lease_ids(lease_ids)
    with _connect(options) as conn:
        _show(fmt, _each_lease(ids, conn.broker.release_lease, conn, ended_ok=True))


@lease.command("show")
@click.argument("lease_ids", nargs=-1)
@format_option
@_lease_id_connection_options
@_errors_to_exit_codes
def show(lease_ids: tuple[str, ...], fmt: str, **options: Any) -> None:
    """Show leases (default: $TRANSOM_LEASE_IDS): status, expiry, what bounds it."""
    ids = _lease_ids(lease_ids)
    with _connect(options) as conn:
        _show(fmt, _each_lease(ids, conn.broker.show_lease, conn))
