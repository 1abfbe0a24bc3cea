"""`transom audit verify|prove|export`: check the verifiable log with a pinned key, prove an event is in it,
download events as CSV or JSON Lines.

``verify`` and ``prove`` trust only the verifier key the auditor pinned (docs/API.md, "Audit ledger — a
verifiable log"): they check the checkpoint's signature, the proofs and the event's leaf here, with
``app.tlog``, and load none of the server's packages.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import IO, Any, NoReturn

import click

from app.admin.api_client import ApiClient, ApiError, broker_options
from app.admin.log_audit import (
    LogMisbehaved,
    SignedCheckpoint,
    check_consistency,
    check_inclusion,
    consistency_needed,
    open_checkpoint,
    recomputed_leaf,
)
from app.tlog import note

KEY_HELP = (
    "The log's verifier key, pinned out of band (GET /v1/audit/key gives it as verifier_key): "
    "<origin>+<key id>+<key>."
)


def _verifier(ctx: click.Context, param: click.Parameter, value: str) -> note.Verifier:
    try:
        return note.parse_verifier_key(value)
    except note.NoteError as exc:
        raise click.BadParameter(str(exc)) from None


@click.group()
def audit() -> None:
    """The audit ledger: a verifiable log."""


@audit.command("verify")
@broker_options
@click.option("--key", "verifier", required=True, callback=_verifier, metavar="VERIFIER_KEY", help=KEY_HELP)
@click.option(
    "--state",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A file that keeps the last checkpoint seen: the new one must be consistent with it, then "
    "replaces it. Missing on the first run.",
)
@click.option(
    "--server",
    is_flag=True,
    help="Also ask the broker to recompute every leaf and the root itself (GET /v1/audit/verify); "
    "optional, and slow on a large log.",
)
def verify(client: ApiClient, verifier: note.Verifier, state: Path | None, server: bool) -> None:
    """Check the latest checkpoint's signature and, with --state, that the log only grew since the saved one.

    Exits 1 naming what failed: a bad signature, a log that shrank, or one rewritten or forked (which sizes,
    which roots)."""
    latest = _latest_checkpoint(client, verifier)
    click.echo(f"ok: checkpoint of size {latest.size}, root {latest.root}, signed by {verifier}")
    if state is not None:
        previous = _saved_checkpoint(state, verifier)
        if previous is None:
            click.echo(f"no checkpoint saved in {state} yet: this one is the start")
        else:
            try:
                _check_grew(client, previous, latest)
            except LogMisbehaved as exc:
                _fail(str(exc))
            click.echo(f"consistent with the saved checkpoint of size {previous.size}")
        _save(state, latest.text)
        click.echo(f"saved the checkpoint of size {latest.size} to {state}")
    if server:
        _server_verification(client)


@audit.command("prove")
@broker_options
@click.argument("event_id", type=click.IntRange(min=1))
@click.option("--key", "verifier", required=True, callback=_verifier, metavar="VERIFIER_KEY", help=KEY_HELP)
def prove(client: ApiClient, event_id: int, verifier: note.Verifier) -> None:
    """Recompute EVENT_ID's leaf from its JSON and check it is included in the latest verified checkpoint."""
    event = client.get(f"/v1/audit/events/{event_id}")
    index = event.get("index")
    if index is None:
        _fail(f"event {event_id} is not integrated into the log yet; try again in a second")
    if not isinstance(index, int) or isinstance(index, bool) or index < 0:
        _fail(f"the broker gave event {event_id} the position {index!r}, which no log has")
    try:
        leaf = recomputed_leaf(event)
        latest = _latest_checkpoint(client, verifier)
        if latest.size <= index:
            _fail(
                f"event {event_id} (position {index}) is not yet in a checkpoint "
                f"(the latest has size {latest.size}); try again in a second"
            )
        proof = _get_or_explain(client, "/v1/audit/proof/inclusion", {"index": index, "size": latest.size})
        check_inclusion(index, leaf, latest, proof)
    except LogMisbehaved as exc:
        _fail(str(exc))
    click.echo(
        f"ok: event {event_id} ({event.get('action')}) is at position {index}, included in the checkpoint "
        f"of size {latest.size}, root {latest.root}, signed by {verifier}"
    )


def _latest_checkpoint(client: ApiClient, verifier: note.Verifier) -> SignedCheckpoint:
    text = client.get_text("/v1/audit/checkpoint")
    try:
        return open_checkpoint(text, verifier)
    except note.NoteError as exc:
        _fail(f"the broker's latest checkpoint does not verify with the key {verifier}: {exc}")


def _saved_checkpoint(state: Path, verifier: note.Verifier) -> SignedCheckpoint | None:
    try:
        text = state.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        _fail(f"cannot read the saved checkpoint in {state} ({exc})")
    try:
        return open_checkpoint(text, verifier)
    except note.NoteError as exc:
        _fail(f"the checkpoint saved in {state} does not verify with the key {verifier}: {exc}")


def _check_grew(client: ApiClient, old: SignedCheckpoint, new: SignedCheckpoint) -> None:
    if consistency_needed(old, new):
        proof = _get_or_explain(client, "/v1/audit/proof/consistency", {"from": old.size, "to": new.size})
        check_consistency(old, new, proof.get("hashes") or [])


def _server_verification(client: ApiClient) -> None:
    result = client.get("/v1/audit/verify")
    if result.get("ok"):
        click.echo(f"ok: the broker recomputed {result.get('checked', 0)} leaves and the root")
        return
    where = result.get("first_bad_index")
    _fail(
        "the broker's own verification fails"
        + (f" at position {where}" if where is not None else "")
        + f": {result.get('reason')}"
    )


def _get_or_explain(client: ApiClient, path: str, params: dict[str, Any]) -> Any:
    """GET a proof; a refusal means the broker cannot back a checkpoint it signed, which is what to say."""
    try:
        return client.get(path, params)
    except ApiError as exc:
        if exc.status in (400, 409):
            _fail(f"the broker has no proof for its own checkpoint ({exc.message})")
        raise


def _fail(message: str) -> NoReturn:
    click.echo(f"NOT OK: {message}", err=True)
    raise SystemExit(1)


def _save(state: Path, text: str) -> None:
    """Replace the state file at once: a crash leaves the old checkpoint or the new one, never half."""
    handle, temporary = tempfile.mkstemp(prefix=f".{state.name}.", dir=state.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, state)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@audit.command("export")
@broker_options
@click.option("--format", "fmt", type=click.Choice(("csv", "jsonl")), default="csv", show_default=True)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write here (default: standard output). The file appears only once the export is complete.",
)
@click.option("--action", default=None, help="e.g. lease.granted")
@click.option("--lease-id", default=None)
@click.option("--policy", default=None)
@click.option("--secret", default=None)
@click.option("--repository", default=None)
@click.option("--branch", default=None)
@click.option("--actor", default=None)
@click.option("--after", default=None, help="RFC 3339 time.")
@click.option("--before", default=None, help="RFC 3339 time.")
def export(client: ApiClient, fmt: str, output: Path | None, **filters: str | None) -> None:
    """Stream the audit events (filtered) as CSV or JSON Lines."""
    params = {"format": fmt, **{key: value for key, value in filters.items() if value is not None}}
    if output is None:
        with click.open_file("-", "wb") as stdout:
            client.stream_to("/v1/audit/events", params, stdout)
        return
    partial = output.with_name(output.name + ".partial")
    try:
        with partial.open("wb") as out:
            written = client.stream_to("/v1/audit/events", params, out)
            _sync(out)
        partial.replace(output)
    finally:
        partial.unlink(missing_ok=True)
    click.echo(f"wrote {written} bytes to {output}", err=True)


def _sync(out: IO[bytes]) -> None:
    out.flush()
    os.fsync(out.fileno())
