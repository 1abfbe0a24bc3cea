"""What `transom dev` prints once everything runs: where each part is and commands to try from another
terminal."""

from __future__ import annotations

import shlex
import shutil
import sys
from pathlib import Path

import click

from app.devserver.demo import BRANCH, ISSUER, KV_SECRET, POLICY, REPOSITORY, TOKEN_SECRET, WINDOW
from app.devserver.demo_issuer import DEMO_AUDIENCE
from app.devserver.stack import Started


def _transom() -> str:
    """How to call this same `transom` from another terminal."""
    beside = Path(sys.executable).parent / "transom"
    if not beside.exists():
        return "transom"
    on_path = shutil.which("transom")
    return "transom" if on_path and Path(on_path).resolve() == beside.resolve() else str(beside)


def announce(started: Started) -> None:
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
        f"  web pages:           {started.url}/ui/   (sign in with the admin token)",
        f"  API reference:       {started.url}/docs   (the document: {started.url}/openapi.json)",
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
