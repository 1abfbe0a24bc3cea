"""The auditor's pages show the verifiable log: the latest checkpoint (size, root, age) and the sequencing lag
on the ledger page, each event's place in the log on its own page, and the verification verdict."""

from __future__ import annotations

import base64
import html
import re
from datetime import timedelta

from flask import Flask

from app.audit.sequencer import publish_checkpoint
from app.clock import SystemClock
from app.tlog import note
from tests.integration.audit.test_web_pages import Browser, signed_in
from tests.integration.conftest import create_broker_token, rt
from tests.support.broker import bearer
from tests.support.ledger import ORIGIN, integrate_all, settle_and_verify


def _record(app: Flask, *names: str) -> None:
    for name in names:
        create_broker_token(app, "auditor", name)


def _publish(app: Flask) -> None:
    runtime = rt(app)
    assert publish_checkpoint(
        runtime.sessions, runtime.ledger_signer, SystemClock(), ORIGIN, interval=timedelta(0)
    )


def _fact(page: str, label: str) -> str:
    """The text of the <dd> after the <dt> labelled ``label``, tags stripped."""
    match = re.search(rf"<dt>{re.escape(label)}</dt><dd>(.*?)</dd>", page, re.S)
    assert match, f"no fact {label!r} on the page"
    return html.unescape(re.sub(r"<[^>]+>", "", match.group(1))).strip()


def _event_ids(app: Flask, token: str) -> dict[str, int]:
    """Each recorded token's name → the id of its token.created event."""
    page = app.test_client().get("/v1/audit/events?action=token.created", headers=bearer(token)).get_json()
    return {event["details"]["name"]: event["id"] for event in page["items"]}


def test_the_ledger_page_shows_the_latest_checkpoint_and_the_lag(app: Flask, auditor_token: str) -> None:
    auditor = signed_in(app, auditor_token)
    page = auditor.text("/ui/events")
    assert _fact(page, "Latest checkpoint") == "none published yet"

    _record(app, "a", "b", "c")
    lagging = auditor.text("/ui/events")
    assert re.fullmatch(r"\d+ event\(s\), the oldest for \d+s", _fact(lagging, "Waiting for the sequencer"))

    size = settle_and_verify(rt(app).sessions, rt(app).ledger_signer).size
    settled = auditor.text("/ui/events")
    assert _fact(settled, "Waiting for the sequencer") == "none"
    assert re.match(rf"size {size}, signed \d+s ago", _fact(settled, "Latest checkpoint"))
    served = (
        app.test_client().get("/v1/audit/checkpoint", headers=bearer(auditor_token)).get_data(as_text=True)
    )
    assert _fact(settled, "Root hash") == served.splitlines()[2]
    assert _fact(settled, "Integrated") == f"{size} event(s)"

    _record(app, "d")
    integrate_all(rt(app).sessions)  # integrated, not signed yet
    assert (
        _fact(auditor.text("/ui/events"), "Integrated") == f"{size + 1} event(s) (1 not yet in a checkpoint)"
    )


def test_an_events_page_says_which_checkpoint_includes_it(app: Flask, auditor_token: str) -> None:
    auditor = signed_in(app, auditor_token)
    _record(app, "first")
    ids = _event_ids(app, auditor_token)
    path = f"/ui/events/{ids['first']}"
    assert f'href="{path}"' in auditor.text("/ui/events")
    assert "Not yet integrated" in auditor.text(path)

    integrate_all(rt(app).sessions)
    integrated = auditor.text(path)
    assert _fact(integrated, "Checkpoint") == "Not yet in a checkpoint: the next one will include it."
    position = int(_fact(integrated, "Position"))

    _publish(app)
    first_size = position + 1  # the checkpoint just published ends with this event
    _record(app, "second")
    integrate_all(rt(app).sessions)
    _publish(app)  # a larger checkpoint: the page still names the first one that included the event
    page = auditor.text(path)
    assert _fact(page, "First checkpoint including it").startswith(f"size {first_size}, signed ")
    checkpoint = app.test_client().get(
        f"/v1/audit/checkpoint?size={first_size}", headers=bearer(auditor_token)
    )
    root = note.parse_checkpoint(checkpoint.get_data(as_text=True).split("\n\n")[0] + "\n").root_hash
    assert _fact(page, "Its root hash") == base64.b64encode(root).decode()
    assert f"transom audit prove {ids['first']} --key VERIFIER_KEY" in page

    missing = auditor.get("/ui/events/999999")
    assert missing.status_code == 404 and "no event with id 999999" in missing.get_data(as_text=True)


def test_the_verify_page_shows_the_verdict_and_names_the_broken_position(
    app: Flask, auditor_token: str
) -> None:
    auditor: Browser = signed_in(app, auditor_token)
    _record(app, "x", "y")
    size = settle_and_verify(rt(app).sessions, rt(app).ledger_signer).size
    page = auditor.text("/ui/verify")
    assert "The log verifies." in page and _fact(page, "Leaves recomputed") == str(size)

    target = _event_ids(app, auditor_token)["y"]
    with rt(app).engine.begin() as connection:
        if connection.dialect.name == "postgresql":  # past the append-only trigger, as an intruder would be
            connection.exec_driver_sql("SET LOCAL session_replication_role = replica")
        connection.exec_driver_sql(f"UPDATE audit_events SET action = 'token.forged' WHERE id = {target}")
    broken = auditor.text("/ui/verify")
    assert re.search(rf"The log is broken at position \d+: the event at position \d+ \(id {target}\)", broken)
