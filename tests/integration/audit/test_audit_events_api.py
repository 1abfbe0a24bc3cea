"""GET /v1/audit/events and /v1/audit/verify: every filter, keyset pages, streamed exports, access."""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.audit.ledger import Actor, Ledger
from app.audit.queries import EXPORT_COLUMNS
from app.clock import FrozenClock
from app.db import transaction
from app.decision.reasons import Reason
from app.tlog import merkle
from app.tlog.canonical import event_leaf
from tests.integration.conftest import rt
from tests.support.broker import bearer
from tests.support.ledger import integrate_all, settle_and_verify

T0 = datetime(2099, 3, 1, 8, 0, tzinfo=UTC)  # after the fixtures' own events (tokens), made now
CI = Actor("ci", "acme/payments@run-1")
ADMIN = Actor("admin", "alice")


def _append(app: Flask, at: datetime, action: str, actor: Actor = CI, **subject: Any) -> int:
    with transaction(rt(app).sessions) as session:
        ledger = Ledger(session, FrozenClock(at))
        event = ledger.append(action, actor=actor, **subject)
        ledger.flush()
        return event.id


def _leaf_hash(event: dict[str, Any]) -> str:
    """What any auditor can do with an event as the API shows it: recompute its leaf hash."""
    return base64.b64encode(merkle.leaf_hash(event_leaf(event))).decode()


@pytest.fixture
def events(app: Flask) -> dict[str, int]:
    """A small ledger whose events differ in one filterable field each, after the events that setting
    up made (the tokens' ``token.created``), which are all earlier."""
    ids = {
        "grant": _append(
            app,
            T0,
            "lease.granted",
            lease_id="lse_a",
            policy="deploy-prod",
            secret="prod-db",
            repository="acme/payments",
            ref="refs/heads/main",
            branch="main",
            decision="allow",
            details={"identity": {"pipeline_id": "111"}},
        ),
        "denial": _append(
            app,
            T0 + timedelta(minutes=1),
            "lease.denied",
            actor=Actor("ci", "acme/web@run-2"),
            secret="prod-db",
            repository="acme/web",
            ref="refs/heads/feature/x",
            branch="feature/x",
            decision="deny",
            reasons=[Reason("branch_not_allowed", "feature/x is not allowed", "deploy-prod")],
            details={"identity": {"pipeline_id": "222"}},
        ),
        "renewal": _append(
            app,
            T0 + timedelta(minutes=2),
            "lease.renewed",
            lease_id="lse_a",
            policy="deploy-prod",
            secret="prod-db",
            repository="acme/payments",
            ref="refs/heads/main",
            branch="main",
            decision="allow",
        ),
        "other_policy": _append(
            app,
            T0 + timedelta(minutes=3),
            "lease.granted",
            lease_id="lse_b",
            policy="deploy-staging",
            secret="staging-db",
            repository="acme/payments",
            ref="refs/heads/release/1",
            branch="release/1",
            decision="allow",
            details={"identity": {"pipeline_id": "111"}},
        ),
        "config": _append(
            app, T0 + timedelta(minutes=4), "policy.updated", actor=ADMIN, details={"name": "deploy-prod"}
        ),
    }
    ids["setup"] = ids["grant"] - 1  # ids are gapless from 1: the setup's events are 1..grant-1
    return ids


def _expected(events: dict[str, int], names: list[str]) -> list[int]:
    setup = list(range(events["setup"], 0, -1)) if "setup" in names else []
    return [events[name] for name in names if name != "setup"] + setup


def _get(client: FlaskClient, token: str, **params: Any) -> Any:
    response = client.get("/v1/audit/events", query_string=params, headers=bearer(token))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def _ids(client: FlaskClient, token: str, **params: Any) -> list[int]:
    return [item["id"] for item in _get(client, token, **params)["items"]]


FILTER_CASES = [
    ({"action": "lease.granted"}, ["other_policy", "grant"]),
    ({"lease_id": "lse_a"}, ["renewal", "grant"]),
    ({"policy": "deploy-staging"}, ["other_policy"]),
    ({"secret": "prod-db"}, ["renewal", "denial", "grant"]),
    ({"repository": "acme/web"}, ["denial"]),
    ({"branch": "main"}, ["renewal", "grant"]),
    ({"ref": "refs/heads/release/1"}, ["other_policy"]),
    ({"actor": "alice"}, ["config"]),
    ({"actor": "acme/web@run-2"}, ["denial"]),
    ({"decision": "deny"}, ["denial"]),
    ({"pipeline_id": "111"}, ["other_policy", "grant"]),
    ({"after": "2099-03-01T08:02:00Z"}, ["config", "other_policy", "renewal"]),
    ({"before": "2099-03-01T08:02:00Z"}, ["denial", "grant", "setup"]),
    ({"after": "2099-03-01T09:01:00+01:00", "before": "2099-03-01T08:03:00Z"}, ["renewal", "denial"]),
    ({"repository": "acme/payments", "branch": "main", "action": "lease.renewed"}, ["renewal"]),
    ({"repository": "nobody/nothing"}, []),
]


@pytest.mark.parametrize(("params", "expected"), FILTER_CASES, ids=[json.dumps(c[0]) for c in FILTER_CASES])
def test_each_filter_selects_exactly_its_events(
    client: FlaskClient,
    auditor_token: str,
    events: dict[str, int],
    params: dict[str, str],
    expected: list[str],
) -> None:
    assert _ids(client, auditor_token, **params) == _expected(events, expected)


def test_events_show_every_field_and_newest_first(
    app: Flask, client: FlaskClient, auditor_token: str, events: dict[str, int]
) -> None:
    items = _get(client, auditor_token)["items"]
    assert [item["id"] for item in items] == sorted((item["id"] for item in items), reverse=True)
    denial = next(item for item in items if item["id"] == events["denial"])
    assert set(denial) == set(EXPORT_COLUMNS)
    assert denial["at"] == "2099-03-01T08:01:00Z"
    assert denial["actor"] == {"type": "ci", "id": "acme/web@run-2"}
    assert denial["reasons"] == [
        {"code": "branch_not_allowed", "message": "feature/x is not allowed", "policy": "deploy-prod"}
    ]
    assert (denial["index"], denial["leaf_hash"]) == (None, None)  # not integrated yet

    integrate_all(rt(app).sessions)
    integrated = _get(client, auditor_token, limit=500)["items"]
    assert sorted(item["index"] for item in integrated) == list(range(len(integrated)))
    for item in integrated:
        assert item["leaf_hash"] == _leaf_hash(item)
    one = client.get(f"/v1/audit/events/{events['denial']}", headers=bearer(auditor_token))
    assert one.status_code == 200
    assert one.get_json() == next(item for item in integrated if item["id"] == events["denial"])


def test_pages_return_each_event_once_while_new_events_arrive(
    app: Flask, client: FlaskClient, auditor_token: str
) -> None:
    for minute in range(23):
        _append(app, T0 + timedelta(minutes=minute), "lease.granted", repository="acme/pages")
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"repository": "acme/pages", "limit": 5}
        if cursor:
            params["cursor"] = cursor
        page = _get(client, auditor_token, **params)
        seen += [item["id"] for item in page["items"]]
        pages += 1
        # Someone appends between every two pages, matching the filter and not.
        _append(app, T0 + timedelta(hours=1, minutes=pages), "lease.granted", repository="acme/pages")
        _append(app, T0 + timedelta(hours=1, minutes=pages), "lease.released", repository="acme/other")
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 5
    assert len(seen) == 23 == len(set(seen))
    assert seen == sorted(seen, reverse=True)


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 501},
        {"cursor": "not-a-cursor"},
        {"cursor": "WyJ4Il0"},
        {"after": "yesterday"},
        {"after": "2099-03-01T08:00:00"},
        {"format": "xml"},
        {"decision": "maybe"},
    ],
)
def test_bad_arguments_are_problem_400(
    client: FlaskClient, auditor_token: str, params: dict[str, Any]
) -> None:
    response = client.get("/v1/audit/events", query_string=params, headers=bearer(auditor_token))
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/problem+json"


def test_jsonl_export_is_the_whole_filtered_set_and_verifies_on_its_own(
    app: Flask, client: FlaskClient, auditor_token: str, events: dict[str, int]
) -> None:
    integrate_all(rt(app).sessions)
    whole = client.get("/v1/audit/events?format=jsonl&limit=1", headers=bearer(auditor_token))
    assert whole.status_code == 200
    assert whole.mimetype == "application/x-ndjson"
    lines = [json.loads(line) for line in whole.get_data(as_text=True).splitlines()]
    assert len(lines) >= 5 and lines[0]["id"] > lines[-1]["id"]
    assert sorted(line["index"] for line in lines) == list(range(len(lines)))
    assert all(line["leaf_hash"] == _leaf_hash(line) for line in lines)

    denied = client.get("/v1/audit/events?format=jsonl&action=lease.denied", headers=bearer(auditor_token))
    assert [json.loads(line)["id"] for line in denied.get_data(as_text=True).splitlines()] == [
        events["denial"]
    ]


def test_csv_export_has_a_header_of_the_event_fields(
    client: FlaskClient, auditor_token: str, events: dict[str, int]
) -> None:
    response = client.get("/v1/audit/events?format=csv&lease_id=lse_a", headers=bearer(auditor_token))
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert 'filename="audit.csv"' in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert list(rows[0]) == list(EXPORT_COLUMNS)
    assert [int(r["id"]) for r in rows] == [events["renewal"], events["grant"]]
    assert json.loads(rows[1]["actor"]) == {"id": "acme/payments@run-1", "type": "ci"}
    assert json.loads(rows[1]["details"]) == {"identity": {"pipeline_id": "111"}}


def test_verify_reports_the_signed_log(
    app: Flask, client: FlaskClient, auditor_token: str, events: dict[str, int]
) -> None:
    before = client.get("/v1/audit/verify", headers=bearer(auditor_token)).get_json()
    stored = len(_get(client, auditor_token, limit=500)["items"])
    assert (before["ok"], before["size"], before["pending"]) == (True, 0, stored)  # nothing signed yet

    settle_and_verify(rt(app).sessions, rt(app).ledger_signer)
    response = client.get("/v1/audit/verify", headers=bearer(auditor_token))
    assert response.status_code == 200
    body = response.get_json()
    assert body["ok"] is True and "first_bad_index" not in body
    assert body["size"] == body["checked"] == stored and body["pending"] == 0
    [latest] = client.get("/v1/audit/checkpoints", headers=bearer(auditor_token)).get_json()["items"]
    assert (latest["size"], latest["root_hash"]) == (stored, body["root_hash"])


@pytest.fixture
def credentials(app: Flask, admin_token: str, auditor_token: str) -> Iterator[dict[str, dict[str, str]]]:
    integrate_all(rt(app).sessions)  # the tokens' events: a log of size 2, for the proof route
    yield {
        "none": {},
        "ci": bearer("eyJhbGciOiJSUzI1NiJ9.e30.c2ln"),
        "unknown": bearer("trn_" + "x" * 43),
        "auditor": bearer(auditor_token),
        "admin": bearer(admin_token),
    }


@pytest.mark.parametrize(
    ("caller", "status"), [("none", 401), ("ci", 403), ("unknown", 401), ("auditor", 200), ("admin", 200)]
)
@pytest.mark.parametrize(
    "path",
    [
        "/v1/audit/events",
        "/v1/audit/events?format=csv",
        "/v1/audit/verify",
        "/v1/audit/checkpoints",
        "/v1/audit/key",
        "/v1/audit/proof/consistency?from=1&to=1",
    ],
)
def test_only_auditors_and_admins_read_the_ledger(
    client: FlaskClient, credentials: dict[str, dict[str, str]], caller: str, status: int, path: str
) -> None:
    response = client.get(path, headers=credentials[caller])
    assert response.status_code == status
    if status != 200:
        assert response.headers["Content-Type"] == "application/problem+json"
