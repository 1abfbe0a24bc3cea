"""The pages in real headless Chromium: an auditor's tour, an admin's revokes, what an auditor cannot do."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from hvac.exceptions import Forbidden
from playwright.sync_api import expect

from tests.e2e.web.conftest import Person, Site
from tests.support.broker import bearer

pytestmark = [pytest.mark.browser, pytest.mark.vault]


def sign_in(person: Person, site: Site, token: str, path: str = "/ui/leases") -> None:
    person.page.goto(site.url + path)
    expect(person.page).to_have_url(re.compile(r"/ui/login\?next="))
    person.page.get_by_label("Broker token").fill(token)
    person.page.get_by_role("button", name="Sign in").click()
    expect(person.page).to_have_url(re.compile(re.escape(path) + "$"))


def token_works(site: Site, token: str) -> bool:
    with site.broker.vault.client_for(token) as client:
        try:
            client.auth.token.lookup_self()
            return True
        except Forbidden:
            return False


def lease_status(site: Site, lease_id: str) -> str:
    status: str = site.broker.admin("GET", f"/v1/leases/{lease_id}").get_json()["status"]
    return status


def test_an_auditor_filters_leases_reads_a_timeline_and_the_calendar(site: Site, person: Person) -> None:
    broker = site.broker
    run = "5550001"
    on_main = broker.request_lease("prod-vault-token", broker.ci_token(run_id=run), ttl="20m").get_json()
    on_release = broker.request_lease(
        "prod-vault-token", broker.ci_token(ref="refs/heads/release/3", run_id="5550002")
    ).get_json()
    broker.request_lease("prod-db", broker.ci_token(run_id=run))  # refused: no such secret
    broker.request_lease("prod-vault-token", broker.ci_token(ref="refs/heads/feature/y", run_id="5550003"))
    weekdays = {
        "type": "weekly",
        "days": ["mon", "tue", "wed", "thu", "fri"],
        "start": "09:00",
        "end": "17:00",
    }
    broker.create(
        "/v1/windows", {"name": "weekday-deploys", "timezone": "Europe/Berlin", "schedule": weekdays}
    )
    broker.policy("deploy-staging", secrets=["prod-db-static"], windows=["weekday-deploys"])
    broker.create(
        "/v1/freezes",
        {
            "name": "wednesday-sync",
            "timezone": "UTC",
            "schedule": {"type": "weekly", "days": ["wed"], "start": "12:00", "end": "18:00"},
            "policies": ["deploy-staging"],
            "reason": "weekly sync",
        },
    )

    page = person.page
    page.goto(site.url + "/ui/leases")
    person.screenshot("01-login")
    sign_in(person, site, site.auditor_token)
    expect(page.locator("header .who")).to_contain_text("audrey")
    expect(page.get_by_role("link", name="Bulk revoke")).to_have_count(0)

    page.get_by_label("Branch or tag").fill("main")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"branch=main"))
    table = page.locator("table.grid tbody")
    expect(table.locator("tr")).to_have_count(1)
    expect(table).to_contain_text(on_main["id"])
    expect(table).not_to_contain_text(on_release["id"])
    expect(page.get_by_role("link", name="CSV")).to_have_attribute(
        "href", re.compile(r"leases\.csv\?branch=main")
    )
    person.screenshot("02-leases-filtered")

    page.get_by_role("link", name=on_main["id"]).click()
    expect(page.locator("h1")).to_contain_text(on_main["id"])
    timeline = page.locator("ol.timeline > li")
    expect(timeline).to_have_count(2)
    expect(timeline.nth(0)).to_contain_text("requested")
    expect(timeline.nth(1)).to_contain_text("granted")
    expect(page.locator("section", has_text="Refusals in the same pipeline")).to_contain_text(
        "unknown_secret"
    )
    expect(page.get_by_role("button", name="Revoke this lease")).to_have_count(0)
    person.screenshot("03-lease")

    page.get_by_role("link", name="Denials").click()
    expect(page.locator("h2", has_text="unknown_secret")).to_be_visible()
    expect(page.locator("h2", has_text="branch_not_allowed")).to_be_visible()
    person.screenshot("04-denials")

    page.get_by_role("link", name="Ledger").click()
    expect(page.locator("table.grid")).to_contain_text("lease.granted")
    person.screenshot("05-ledger")

    page.get_by_role("link", name="Calendar").click()
    picture = page.locator("figure.calendar svg")
    expect(picture).to_be_visible()
    expect(picture.locator("line.now")).to_have_count(1)
    expect(picture.locator("g[data-policy='deploy-prod'] rect.lease")).to_have_count(2)
    staging = picture.locator("g[data-policy='deploy-staging']")
    # The calendar opens on today (00:00 UTC) and the next seven days: every weekday once, today's twice.
    shown = [(datetime.now(UTC).date() + timedelta(days=n)).weekday() for n in range(8)]
    expect(staging.locator("rect.window")).to_have_count(sum(day < 5 for day in shown))
    expect(staging.locator("rect.freeze")).to_have_count(shown.count(2))
    expect(staging.locator("rect.freeze title")).to_contain_text("T12:00:00Z to ")
    expect(picture.locator("text.now-label")).to_have_text("now")
    person.screenshot("06-calendar")

    # The stylesheet loaded under the strict CSP and nothing was blocked.
    header = page.locator("header.top")
    assert header.evaluate("el => getComputedStyle(el).backgroundColor") == "rgb(22, 32, 58)"
    assert person.console_errors == []


def test_an_admin_revokes_a_lease_from_its_page_and_vault_stops_honouring_it(
    site: Site, person: Person
) -> None:
    broker = site.broker
    lease = broker.lease("prod-vault-token")
    other = broker.request_lease("prod-vault-token", broker.ci_token(ref="refs/heads/release/4")).get_json()
    assert token_works(site, lease["data"]["token"])

    sign_in(person, site, site.admin_token, f"/ui/leases/{lease['id']}")
    page = person.page
    page.get_by_label("Reason").fill("suspected leak")
    person.screenshot("07-lease-admin")
    page.get_by_role("button", name="Revoke this lease").click()

    expect(page.locator("p.flash")).to_contain_text("Vault confirmed")
    expect(page.locator("h1 .badge")).to_have_text("revoked")
    last = page.locator("ol.timeline > li").last
    expect(last).to_contain_text("revoked")
    expect(last).to_contain_text("suspected leak")
    expect(last).to_contain_text("Vault confirmed")
    expect(last).to_contain_text("admin:alice")
    person.screenshot("08-lease-revoked")
    assert lease_status(site, lease["id"]) == "revoked"
    assert not token_works(site, lease["data"]["token"])

    # Bulk revoke: a preview first, the revocation only on confirmation.
    page.get_by_role("link", name="Bulk revoke").click()
    page.get_by_label("Branch or tag").fill("release/4")
    page.get_by_label("Reason").fill("rotation")
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("section.danger")).to_contain_text(other["id"])
    person.screenshot("09-bulk-revoke-confirm")
    assert lease_status(site, other["id"]) == "active"
    page.get_by_role("button", name=re.compile("Revoke every active lease")).click()
    expect(page.locator("p.flash")).to_contain_text("Revoked 1 lease")
    assert lease_status(site, other["id"]) == "revoked"
    assert not token_works(site, other["data"]["token"])
    assert person.console_errors == []


def test_an_auditor_has_no_revoke_button_and_forged_posts_are_refused(site: Site, person: Person) -> None:
    lease = site.broker.lease("prod-vault-token")
    sign_in(person, site, site.auditor_token, f"/ui/leases/{lease['id']}")
    page = person.page
    expect(page.locator("h1")).to_contain_text(lease["id"])
    expect(page.get_by_role("button", name="Revoke this lease")).to_have_count(0)
    expect(page.locator(f"form[action$='/ui/leases/{lease['id']}/revoke']")).to_have_count(0)

    # The auditor's own, valid CSRF token (from the sign-out form) still does not make a revoke allowed.
    csrf = page.locator("form.signout input[name=csrf_token]").get_attribute("value")
    assert csrf
    revoke_url = f"{site.url}/ui/leases/{lease['id']}/revoke"
    forged = page.request.post(revoke_url, form={"reason": "forged", "csrf_token": csrf})
    assert forged.status == 403
    assert "may not do this" in forged.text()
    bulk = page.request.post(f"{site.url}/ui/revoke", form={"secret": "prod-vault-token", "csrf_token": csrf})
    assert bulk.status == 403
    without_csrf = page.request.post(revoke_url, form={"reason": "forged"})
    assert without_csrf.status == 400

    assert lease_status(site, lease["id"]) == "active"
    assert token_works(site, lease["data"]["token"])
    api = site.broker.client.get(f"/v1/leases/{lease['id']}", headers=bearer(site.auditor_token))
    assert api.get_json()["status"] == "active"
