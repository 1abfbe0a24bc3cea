"""Real headless Chromium (Debian's package, driven by Playwright) against the broker served on loopback.

The app runs in this process, served by werkzeug in a thread; the test configures it through Flask's test
client (same app, same database) and looks at it through the browser, as a person would.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.integration.conftest import create_broker_token, make_app, rt
from tests.support.broker import Broker
from tests.support.databases import SqliteDatabases
from tests.support.oidc_issuer import OidcIssuer
from tests.support.openbao import OpenBaoServer
from tests.support.server import serving

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[3] / "build" / "screenshots"


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium chromium-driver (make system-deps)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def web_databases(tmp_path_factory: pytest.TempPathFactory) -> SqliteDatabases:
    return SqliteDatabases(tmp_path_factory.mktemp("web-sqlite"))


@dataclass
class Site:
    url: str
    app: Flask
    broker: Broker
    admin_token: str
    auditor_token: str


@pytest.fixture
def site(web_databases: SqliteDatabases, vault: OpenBaoServer) -> Iterator[Site]:
    """A configured broker (issuer, secrets, policy ``deploy-prod``) served over HTTP."""
    app = make_app(web_databases.fresh(), vault)
    admin_token = create_broker_token(app, "admin", "alice")
    with OidcIssuer() as issuer:
        broker = Broker(app, app.test_client(), admin_token, issuer, vault)
        broker.register_issuer()
        broker.kv_secret()
        broker.token_secret()
        broker.policy()
        with serving(app) as url:
            yield Site(url, app, broker, admin_token, create_broker_token(app, "auditor", "audrey"))
    rt(app).engine.dispose()


@dataclass
class Person:
    """One browser profile (its own cookies) with a page, and every console error the page reported."""

    context: BrowserContext
    page: Page
    console_errors: list[str]

    def screenshot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@pytest.fixture
def person(chromium: Browser) -> Iterator[Person]:
    context = chromium.new_context(viewport={"width": 1360, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield Person(context, page, errors)
    context.close()
