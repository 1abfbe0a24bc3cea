"""`transom dev token`: a demo CI token, alone on stdout.

``TRANSOM_ID_TOKEN_COMMAND`` runs it for every lease call, so it must start as fast as `transom lease`: it
needs only the demo issuer's key and URL in ``instance/dev/`` and PyJWT, never the server stack (Flask,
SQLAlchemy), which `transom dev` itself loads.
"""

from __future__ import annotations

import click

from app.decision.durations import parse_duration
from app.devserver.demo_issuer import DEMO_AUDIENCE, DemoJob, IssuerNotSetUp, mint_demo_token
from app.settings import INSTANCE_DIR

# The demo job's defaults are the demo policy's repository and branch (app/devserver/demo.py).
_DEMO_JOB = DemoJob()


@click.command("token")
@click.option("--repo", default=_DEMO_JOB.repo, show_default=True, help="The repository (owner/name).")
@click.option("--branch", default=_DEMO_JOB.branch, show_default=True, help="The branch the job runs on.")
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
