"""What a newcomer meets in a browser (issue 17): the front door, the API reference, pages at 1280 px."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.e2e.web.conftest import Person, Site
from tests.e2e.web.test_pages_in_chromium import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.vault]

LONG_REPOSITORY = "an-organisation-with-a-long-name/a-repository-whose-name-goes-on-for-quite-a-while"
LONG_BRANCH = "release/2026-12-the-quarterly-release-with-a-descriptive-and-rather-long-branch-name"


def test_the_broker_address_opens_the_pages_in_a_browser(site: Site, person: Person) -> None:
    person.page.goto(site.url + "/")
    expect(person.page).to_have_url(re.compile(r"/ui/login\?next="))
    expect(person.page.get_by_label("Broker token")).to_be_visible()


def test_the_api_reference_loads_only_same_origin_files_and_shows_the_schedule_types(
    site: Site, person: Person
) -> None:
    page = person.page
    loaded: list[tuple[str, int]] = []
    page.on("response", lambda response: loaded.append((response.url, response.status)))
    page.goto(site.url + "/docs")
    expect(page.locator(".swagger-ui .information-container")).to_contain_text("Transom")
    expect(page.locator(".opblock-summary-path", has_text="/v1/windows").first).to_be_visible()
    expect(page.locator(".models", has_text="WeeklySchedule")).to_be_visible()
    person.screenshot("20-api-reference")

    origin = urlsplit(site.url).netloc
    assert loaded, "the page loaded nothing"
    for url, status in loaded:
        if url.startswith("data:"):
            continue
        assert urlsplit(url).netloc == origin, url
        assert status == 200, (url, status)
    assert person.console_errors == []


def test_the_tables_fit_a_1280_pixel_screen(site: Site, person: Person) -> None:
    broker = site.broker
    broker.policy("long-names", repositories=[LONG_REPOSITORY], branches=["release/*"])
    claims = {"repo": LONG_REPOSITORY, "ref": f"refs/heads/{LONG_BRANCH}", "run_id": "90000000001"}
    for _ in range(2):
        broker.lease("prod-vault-token", token=broker.ci_token(**claims))
    assert broker.request_lease("unknown", broker.ci_token(**claims)).status_code == 403

    page = person.page
    page.set_viewport_size({"width": 1280, "height": 900})
    sign_in(person, site, site.auditor_token)
    for path, shot in (
        ("/ui/leases", "21-leases-1280"),
        ("/ui/events", "22-ledger-1280"),
        ("/ui/denials", "23-denials-1280"),
        ("/ui/calendar", "24-calendar-1280"),
    ):
        page.goto(site.url + path)
        expect(page.locator("table.grid").first).to_be_visible()
        person.screenshot(shot)
        widths = page.evaluate(
            """() => ({
                viewport: window.innerWidth,
                page: document.documentElement.scrollWidth,
                tables: [...document.querySelectorAll('table.grid')].map(t => t.scrollWidth),
            })"""
        )
        assert widths["page"] <= widths["viewport"], (path, widths)
        assert all(width <= widths["viewport"] for width in widths["tables"]), (path, widths)
    # A cut cell still says its whole value on hover.
    page.goto(site.url + "/ui/leases")
    expect(page.locator(f"table.grid td[title='{LONG_REPOSITORY}']").first).to_be_visible()
    assert person.console_errors == []
