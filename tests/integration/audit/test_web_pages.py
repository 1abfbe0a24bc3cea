"""The auditor/admin pages over HTTP (Flask's client): sign-in, CSRF, roles, each page, revoking."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hvac.exceptions import Forbidden
from werkzeug.test import TestResponse

from app.instants import format_instant, parse_instant
from tests.integration.conftest import create_broker_token
from tests.support.broker import Broker, bearer

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Browser:
    """A Flask test client used as a person would: pages, forms, the session cookie."""

    def __init__(self, app: Flask) -> None:
        self.client: FlaskClient = app.test_client()

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        return self.client.get(path, **kwargs)

    def csrf(self, path: str = "/ui/login") -> str:
        match = CSRF.search(self.get(path).get_data(as_text=True))
        assert match, f"no CSRF field on {path}"
        return match.group(1)

    def post(self, path: str, data: dict[str, str], *, csrf: bool = True) -> TestResponse:
        form = {**data, "csrf_token": self.csrf()} if csrf else data
        return self.client.post(path, data=form)

    def sign_in(self, token: str, next_: str = "") -> TestResponse:
        return self.post("/ui/login", {"token": token, "next": next_})

    def text(self, path: str) -> str:
        response = self.get(path)
        assert response.status_code == 200, (path, response.status_code)
        return response.get_data(as_text=True)


def signed_in(app: Flask, token: str) -> Browser:
    browser = Browser(app)
    assert browser.sign_in(token).status_code == 303
    return browser


@pytest.fixture
def auditor(app: Flask, auditor_token: str) -> Browser:
    return signed_in(app, auditor_token)


@pytest.fixture
def admin(app: Flask, admin_token: str) -> Browser:
    return signed_in(app, admin_token)


def _token_works(broker: Broker, token: str) -> bool:
    with broker.vault.client_for(token) as client:
        try:
            client.auth.token.lookup_self()
            return True
        except Forbidden:
            return False


def _status(broker: Broker, lease_id: str) -> str:
    status: str = broker.admin("GET", f"/v1/leases/{lease_id}").get_json()["status"]
    return status


# --- signing in ------------------------------------------------------------------------------------------


def test_pages_send_strangers_to_the_sign_in_page(app: Flask) -> None:
    response = Browser(app).get("/ui/leases?status=active")
    assert response.status_code == 302
    assert response.headers["Location"] == "/ui/login?next=/ui/leases?status%3Dactive"


@pytest.mark.parametrize(
    "token",
    ["trn_" + "x" * 43, "eyJhbGciOiJSUzI1NiJ9.e30.c2ln", "", "   "],
    ids=["unknown", "jwt", "empty", "blank"],
)
def test_sign_in_refuses_anything_but_a_live_broker_token(app: Flask, token: str) -> None:
    browser = Browser(app)
    response = browser.sign_in(token)
    assert response.status_code == 401
    assert "unknown, expired or not a broker token" in response.get_data(as_text=True)
    assert browser.get("/ui/leases").status_code == 302


def test_sign_in_lands_on_the_page_asked_for_but_never_off_site(app: Flask, auditor_token: str) -> None:
    assert Browser(app).sign_in(auditor_token, "/ui/events?action=lease.granted").headers["Location"] == (
        "/ui/events?action=lease.granted"
    )
    for elsewhere in ("https://evil.example/ui/", "//evil.example/ui/", "/\\evil.example", "javascript:x"):
        assert Browser(app).sign_in(auditor_token, elsewhere).headers["Location"] == "/ui/leases"


def test_the_session_cookie_is_signed_httponly_strict_and_holds_no_token(
    app: Flask, auditor_token: str
) -> None:
    browser = Browser(app)
    response = browser.sign_in(auditor_token)
    cookie = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("session="))
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    value = cookie.split(";", 1)[0].removeprefix("session=")
    assert auditor_token not in value
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    stored = serializer.loads(value)
    assert auditor_token not in json.dumps(stored)
    forged = value[:-2] + ("AA" if not value.endswith("AA") else "BB")
    browser.client.set_cookie("session", forged)
    assert browser.get("/ui/leases").status_code == 302


def test_signing_out_ends_the_session(auditor: Browser) -> None:
    assert auditor.post("/ui/logout", {}).status_code == 303
    assert auditor.get("/ui/leases").status_code == 302


def test_deleting_the_token_ends_its_page_session(
    app: Flask, client: FlaskClient, admin_token: str, auditor: Browser
) -> None:
    assert auditor.get("/ui/leases").status_code == 200
    assert client.delete("/v1/tokens/test-auditor", headers=bearer(admin_token)).status_code == 204
    assert auditor.get("/ui/leases").status_code == 302


def test_a_page_session_lasts_twelve_hours(app: Flask, auditor: Browser) -> None:
    with auditor.client.session_transaction() as session:
        session["signed_in_at"] = format_instant(parse_instant(session["signed_in_at"]) - timedelta(hours=12))
    assert auditor.get("/ui/leases").status_code == 302


# --- who may do what -------------------------------------------------------------------------------------

READER_PAGES = [
    "/ui/leases",
    "/ui/events",
    "/ui/denials",
    "/ui/calendar",
    "/ui/verify",
    "/ui/leases.csv",
    "/ui/events.jsonl",
]
ADMIN_PAGES = ["/ui/revoke"]


@pytest.mark.parametrize("path", READER_PAGES + ADMIN_PAGES)
def test_access_matrix_of_the_pages(app: Flask, auditor: Browser, admin: Browser, path: str) -> None:
    assert Browser(app).get(path).status_code == 302
    assert auditor.get(path).status_code == (403 if path in ADMIN_PAGES else 200)
    assert admin.get(path).status_code == 200


def test_the_lease_page_shows_the_workflow_and_the_source_address(broker: Broker, auditor: Browser) -> None:
    lease = broker.lease("prod-vault-token")  # the test client's address is 127.0.0.1
    page = auditor.text(f"/ui/leases/{lease['id']}")
    assert "acme/payments/.github/workflows/deploy.yml@refs/heads/main" in page
    assert "Source address" in page and "127.0.0.1" in page


def test_an_auditor_sees_no_admin_action_and_a_forged_post_is_refused(
    broker: Broker, auditor: Browser
) -> None:
    lease = broker.lease("prod-vault-token")
    page = auditor.text(f"/ui/leases/{lease['id']}")
    assert "Revoke this lease" not in page and "/revoke" not in page
    assert "Bulk revoke" not in auditor.text("/ui/leases")

    revoke = auditor.post(f"/ui/leases/{lease['id']}/revoke", {"reason": "forged"})
    assert revoke.status_code == 403
    assert revoke.mimetype == "text/html"
    bulk = auditor.post("/ui/revoke", {"secret": "prod-vault-token"})
    assert bulk.status_code == 403
    assert _status(broker, lease["id"]) == "active"
    assert _token_works(broker, lease["data"]["token"])


@pytest.mark.parametrize("csrf_value", [None, "", "not-the-token", "é"])
def test_every_post_without_the_sessions_csrf_token_is_refused(
    broker: Broker, admin: Browser, admin_token: str, csrf_value: str | None
) -> None:
    lease = broker.lease("prod-vault-token")
    extra = {} if csrf_value is None else {"csrf_token": csrf_value}
    for path, data in (
        (f"/ui/leases/{lease['id']}/revoke", {"reason": "x"}),
        ("/ui/revoke", {"secret": "prod-vault-token"}),
        ("/ui/logout", {}),
        ("/ui/login", {"token": admin_token}),
    ):
        response = admin.post(path, {**data, **extra}, csrf=False)
        assert response.status_code == 400, path
        assert "stale or did not come from this site" in response.get_data(as_text=True)
    assert _status(broker, lease["id"]) == "active"
    assert admin.get("/ui/leases").status_code == 200  # still signed in: the logout was refused too


def test_another_sessions_csrf_token_does_not_do(app: Flask, broker: Broker, admin: Browser) -> None:
    lease = broker.lease("prod-vault-token")
    other = signed_in(app, create_broker_token(app, "admin", "other-admin"))
    response = admin.client.post(
        f"/ui/leases/{lease['id']}/revoke", data={"reason": "x", "csrf_token": other.csrf()}
    )
    assert response.status_code == 400
    assert _status(broker, lease["id"]) == "active"


# --- admin actions ---------------------------------------------------------------------------------------


def test_an_admin_revokes_a_lease_from_its_page_and_vault_stops_honouring_it(
    broker: Broker, admin: Browser
) -> None:
    lease = broker.lease("prod-vault-token")
    page = admin.text(f"/ui/leases/{lease['id']}")
    assert "Revoke this lease" in page

    response = admin.post(f"/ui/leases/{lease['id']}/revoke", {"reason": "suspected leak"})
    assert response.status_code == 303
    assert response.headers["Location"] == f"/ui/leases/{lease['id']}"
    assert _status(broker, lease["id"]) == "revoked"
    assert not _token_works(broker, lease["data"]["token"])

    page = admin.text(f"/ui/leases/{lease['id']}")
    assert "Vault confirmed it" in page  # the flash message
    assert "Revoke this lease" not in page
    timeline = page.split("<h2>Timeline</h2>", 1)[1]
    assert "revoked" in timeline and "suspected leak" in timeline and "admin:test-admin" in timeline
    assert "Vault confirmed" in timeline

    again = admin.post(f"/ui/leases/{lease['id']}/revoke", {"reason": "twice"})
    assert again.status_code == 409 and again.mimetype == "text/html"


def test_bulk_revoke_previews_and_revokes_only_once_confirmed(broker: Broker, admin: Browser) -> None:
    on_main = broker.lease("prod-vault-token")
    on_release = broker.request_lease(
        "prod-vault-token", broker.ci_token(ref="refs/heads/release/2")
    ).get_json()

    preview = admin.text("/ui/revoke?branch=main&reason=rotation")
    assert on_main["id"] in preview and on_release["id"] not in preview
    assert "<strong>1</strong> active lease" in preview
    assert _status(broker, on_main["id"]) == "active"

    done = admin.post("/ui/revoke", {"branch": "main", "reason": "rotation"})
    assert done.status_code == 303
    assert _status(broker, on_main["id"]) == "revoked"
    assert _status(broker, on_release["id"]) == "active"
    assert not _token_works(broker, on_main["data"]["token"])
    assert "Revoked 1 lease matching" in admin.text(done.headers["Location"])

    assert admin.post("/ui/revoke", {"reason": "everything"}).status_code == 400
    assert _status(broker, on_release["id"]) == "active"


# --- what the pages show ---------------------------------------------------------------------------------


def test_the_leases_table_filters_and_exports_the_same_selection(broker: Broker, auditor: Browser) -> None:
    main = broker.lease("prod-vault-token")
    release = broker.request_lease("prod-vault-token", broker.ci_token(ref="refs/heads/release/2")).get_json()
    kv = broker.lease("prod-db-static")

    page = auditor.text("/ui/leases?branch=main&secret=prod-vault-token")
    assert main["id"] in page and release["id"] not in page and kv["id"] not in page
    page = auditor.text("/ui/leases?branch=release/2&status=active&issued_after=2000-01-01T00:00")
    assert release["id"] in page and main["id"] not in page
    assert main["id"] not in auditor.text("/ui/leases?issued_before=2000-01-01T00:00")
    export_link = re.search(r'href="(/ui/leases\.csv[^"]*)"', page)
    assert (
        export_link and "branch=release/2" in export_link.group(1) and "status=active" in export_link.group(1)
    )

    exported = auditor.get("/ui/leases.csv?branch=main")
    assert exported.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True))))
    assert {r["id"] for r in rows} == {main["id"], kv["id"]}
    lines = auditor.get("/ui/leases.jsonl?secret=prod-db-static").get_data(as_text=True).splitlines()
    assert [json.loads(line)["id"] for line in lines] == [kv["id"]]
    assert "canary" not in exported.get_data(as_text=True)  # no secret value in any export

    bad = auditor.get("/ui/leases?issued_after=tomorrow&status=gone")
    assert bad.status_code == 400
    assert "issued_after" in bad.get_data(as_text=True) and "status" in bad.get_data(as_text=True)


def test_a_lease_page_shows_its_timeline_and_the_refusals_of_its_pipeline(
    broker: Broker, auditor: Browser
) -> None:
    run = "9000000001"
    lease = broker.request_lease("prod-vault-token", broker.ci_token(run_id=run), ttl="5m").get_json()
    assert broker.request_lease("same-pipeline-secret", broker.ci_token(run_id=run)).status_code == 403
    assert broker.request_lease("other-pipeline-secret", broker.ci_token(run_id="77")).status_code == 403
    renewed = broker.client.post(
        f"/v1/leases/{lease['id']}/renew", json={"ttl": "10m"}, headers=bearer(broker.ci_token(run_id=run))
    )
    assert renewed.status_code == 200
    released = broker.client.post(
        f"/v1/leases/{lease['id']}/release", headers=bearer(broker.ci_token(run_id=run))
    )
    assert released.status_code == 200

    page = auditor.text(f"/ui/leases/{lease['id']}")
    timeline = page.split("<h2>Timeline</h2>", 1)[1].split("<h2>", 1)[0]
    steps = re.findall(r"<strong>([^<]+)</strong>", timeline)
    assert steps == ["requested", "granted", "renewed", "released"]
    assert "Vault confirmed" in timeline
    assert f"ci:acme/payments@run-{run}" in timeline
    denials = page.split("Refusals in the same pipeline", 1)[1]
    assert "same-pipeline-secret" in denials and "unknown_secret" in denials
    assert "other-pipeline-secret" not in denials
    assert f"<dd>{run}</dd>" in page  # the identity


def test_the_denials_page_groups_refusals_by_reason(broker: Broker, auditor: Browser) -> None:
    broker.request_lease("nope-1")
    broker.request_lease("nope-2")
    broker.request_lease("prod-vault-token", broker.ci_token(ref="refs/heads/feature/x"))
    page = auditor.text("/ui/denials")
    groups = re.findall(r'<h2><code>([a-z_]+)</code> <span class="count">(\d+)</span>', page)
    assert groups == [("unknown_secret", "2"), ("branch_not_allowed", "1")]
    assert "3 refused requests" in page
    assert "Nothing was refused" in auditor.text("/ui/denials?after=2099-01-01T00:00")


def test_the_ledger_page_filters_exports_and_verifies(broker: Broker, auditor: Browser) -> None:
    lease = broker.lease("prod-vault-token")
    page = auditor.text("/ui/events?action=lease.granted")
    assert lease["id"] in page and "policy.created" not in page
    assert "policy.created" in auditor.text("/ui/events")
    lines = auditor.get(f"/ui/events.jsonl?lease_id={lease['id']}").get_data(as_text=True).splitlines()
    assert [json.loads(line)["action"] for line in lines] == ["lease.granted"]
    broker.verified_log()
    assert "The log verifies." in auditor.text("/ui/verify")


def test_the_calendar_draws_the_week_with_now_and_the_active_leases(broker: Broker, auditor: Browser) -> None:
    lease = broker.lease("prod-vault-token")
    page = auditor.text("/ui/calendar")
    assert "<svg" in page and 'class="now"' in page
    assert 'data-policy="deploy-prod"' in page
    assert f'href="/ui/leases/{lease["id"]}"' in page
    assert 'class="open"' in page  # the always window is open all week
    assert 'class="now-label"' in page
    later = auditor.text("/ui/calendar?start=2099-01-05&days=3")
    assert 'class="now-label"' not in later and "Mon 05 Jan" in later and "Thu 08 Jan" not in later
    assert auditor.get("/ui/calendar?days=40").status_code == 400
    assert auditor.get("/ui/calendar?policy=unknown").status_code == 404


def test_pages_carry_a_strict_csp_and_show_friendly_errors(
    app: Flask, auditor: Browser, client: FlaskClient
) -> None:
    response = auditor.get("/ui/leases")
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy and "'unsafe-inline'" not in policy
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "<script" not in response.get_data(as_text=True) and "style=" not in response.get_data(
        as_text=True
    )

    missing = auditor.get("/ui/leases/lse_nothing")
    assert missing.status_code == 404 and missing.mimetype == "text/html"
    assert "no lease" in missing.get_data(as_text=True)
    api = client.get(
        "/v1/leases/lse_nothing", headers=bearer(create_broker_token(app, "auditor", "api-reader"))
    )
    assert api.status_code == 404 and api.headers["Content-Type"] == "application/problem+json"
