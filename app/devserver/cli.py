"""`transom dev`: a one-command local broker; `transom dev token`: a demo CI token for it."""

from __future__ import annotations

import shlex
import shutil
import sys
from pathlib import Path

import click

from app.config import INSTANCE_DIR
from app.decision.durations import parse_duration
from app.devserver.demo import BRANCH, ISSUER, KV_SECRET, POLICY, REPOSITORY, TOKEN_SECRET, WINDOW
from app.devserver.demo_issuer import DEMO_AUDIENCE, DemoJob, IssuerNotSetUp, mint_demo_token
from app.devserver.openbao import OpenBaoError
from app.devserver.stack import DevError, DevStack, Started


@click.group(invoke_without_command=True)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535), help="API port.")
@click.option(
    "--log-level",
    envvar="TRANSOM_LOG_LEVEL",
    default="INFO",
    show_default=True,
    type=click.Choice(("DEBUG", "INFO", "WARNING", "ERROR"), case_sensitive=False),
)
@click.pass_context
def dev(ctx: click.Context, port: int, log_level: str) -> None:
    """Start OpenBao in dev mode, SQLite, the embedded scheduler and a demo issuer; serve the API on
    127.0.0.1. Ctrl-C stops all of it. State lives in instance/ (TRANSOM_INSTANCE_DIR)."""
    if ctx.invoked_subcommand is not None:
        return
    try:
        DevStack(INSTANCE_DIR, port, {"log_level": log_level.upper()}).run(_announce)
    except (DevError, OpenBaoError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo("transom dev: stopped", err=True)


@dev.command("token")
@click.option("--repo", default=REPOSITORY, show_default=True, help="The repository (owner/name).")
@click.option("--branch", default=BRANCH, show_default=True, help="The branch the job runs on.")
@click.option("--tag", default=None, help="A tag instead of a branch (refs/tags/TAG).")
@click.option(
    "--runner",
    default="github-hosted",
    show_default=True,
    help="runner_environment: github-hosted, self-hosted.",
)
@click.option("--event", default="push", show_default=True, help="event_name: push, pull_request, ...")
@click.option("--environment", default=None, help="The deployment environment the job names, if any.")
@click.option("--run-id", default="1", show_default=True, help="One run id is one workload (renew, release).")
@click.option("--audience", default=DEMO_AUDIENCE, show_default=True)
@click.option("--lifetime", default="10m", show_default=True, help="How long the token is valid.")
def token(
    repo: str,
    branch: str,
    tag: str | None,
    runner: str,
    event: str,
    environment: str | None,
    run_id: str,
    audience: str,
    lifetime: str,
) -> None:
    """Print a GitHub-style ID token from the demo issuer, alone on stdout."""
    try:
        length = parse_duration(lifetime)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--lifetime") from None
    job = DemoJob(repo, branch, tag, runner, event, environment, run_id)
    try:
        click.echo(mint_demo_token(INSTANCE_DIR / "dev", job, audience=audience, lifetime=length))
    except IssuerNotSetUp as exc:
        raise click.ClickException(str(exc)) from None


def _transom() -> str:
    """How to call this same `transom` from another terminal."""
    beside = Path(sys.executable).parent / "transom"
    if not beside.exists():
        return "transom"
    on_path = shutil.which("transom")
    return "transom" if on_path and Path(on_path).resolve() == beside.resolve() else str(beside)


def _announce(started: Started) -> None:
    t = _transom()
    demo = started.demo
    token_cmd = f"{t} dev token --repo {REPOSITORY} --branch {BRANCH}"
    curl = (
        f'curl -s -X POST "$TRANSOM_URL/v1/leases" -H "Authorization: Bearer $TOKEN" '
        f'-H \'Content-Type: application/json\' -d \'{{"secret": "{KV_SECRET}", "ttl": "5m"}}\''
    )
    lines = [
        f"Transom dev broker: {started.url}   (Ctrl-C stops everything)",
        f"  OpenBao (dev mode):  {started.openbao.addr}   log {started.openbao.log_path}",
        f"  database (SQLite):   {started.database_path}",
        f"  demo OIDC issuer:    {started.issuer.url}   (flavor github, audience {DEMO_AUDIENCE})",
        "  scheduler:           embedded",
        f"  admin token:         {demo.admin_token}",
        "",
        f"Demo: issuer {ISSUER!r}; secrets {KV_SECRET!r} (kv: {', '.join(demo.kv_keys)}) and {TOKEN_SECRET!r}"
        " (a Vault token);",
        f"      window {WINDOW!r} open until {demo.window_closes:%Y-%m-%d %H:%M}Z;"
        f" policy {POLICY!r}: repository {REPOSITORY}, branch {BRANCH}, GitHub-hosted runners.",
        "",
        "Try it from another terminal:",
        f"  export TRANSOM_URL={started.url} TRANSOM_TOKEN={demo.admin_token}",
        f"  export BAO_ADDR={started.openbao.addr} BAO_TOKEN={started.openbao.root_token}",
        "",
        "  # a lease, with curl",
        f"  TOKEN=$({token_cmd})",
        f"  {curl}",
        "",
        "  # denied: a pull request from a feature branch, on a self-hosted runner",
        f"  TOKEN=$({t} dev token --repo {REPOSITORY} --branch feature/x --event pull_request"
        " --runner self-hosted)",
        f"  {curl}",
        "",
        "  # a command with the secret in its environment; the lease is released when it ends",
        f"  export TRANSOM_ID_TOKEN_COMMAND={shlex.quote(token_cmd)}",
        f"  {t} lease exec --secret {KV_SECRET} -- sh -c 'echo \"deploying as $DB_USER\"'",
        "",
        "  # what the ledger recorded",
        '  curl -s -H "Authorization: Bearer $TRANSOM_TOKEN" "$TRANSOM_URL/v1/audit/events?limit=5"',
    ]
    click.echo("\n".join(lines))
