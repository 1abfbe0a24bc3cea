"""Issue 17 on the pages: the calendar opens on now, dates read as ISO, the Denials page counts requests."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask

from app.clock import FrozenClock
from tests.integration.audit.test_web_pages import Browser, signed_in
from tests.integration.conftest import create_broker_token, make_app, rt
from tests.support.broker import Broker
from tests.support.oidc_issuer import OidcIssuer
from tests.support.openbao import OpenBaoServer

SUNDAY_EVENING = datetime(2026, 12, 13, 18, 30, tzinfo=UTC)
GROUP = re.compile(r'<h2>((?:<code>[a-z_]+</code>(?: \+ )?)+) <span class="count">(\d+)</span>')


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(SUNDAY_EVENING)


@pytest.fixture
def clocked_app(database_url: str, vault: OpenBaoServer, clock: FrozenClock) -> Iterator[Flask]:
    app = make_app(database_url, vault, clock=clock)
    yield app
    rt(app).engine.dispose()


def _auditor(app: Flask) -> Browser:
    return signed_in(app, create_broker_token(app, "auditor", "audrey"))


def test_the_calendar_opens_on_today_and_the_next_seven_days_even_on_a_sunday(
    clocked_app: Flask, vault: OpenBaoServer
) -> None:
    with OidcIssuer() as issuer:
        Broker.configured(clocked_app, create_broker_token(clocked_app, "admin"), issuer, vault)
    page = _auditor(clocked_app).text("/ui/calendar")
    labels = re.findall(r'<text class="day-label"[^>]*>([^<]+)</text>', page)
    assert labels == [
        "Sun 13 Dec",
        "Mon 14 Dec",
        "Tue 15 Dec",
        "Wed 16 Dec",
        "Thu 17 Dec",
        "Fri 18 Dec",
        "Sat 19 Dec",
        "Sun 20 Dec",
    ]
    assert 'class="now-label"' in page
    # Earlier and later step by the days shown; "Today" comes back here.
    assert "start=2026-12-05&amp;days=8" in page and "start=2026-12-21&amp;days=8" in page
    assert re.search(r'start=2026-12-13&amp;days=8">Today</a>', page)


def test_date_fields_are_iso_text_and_accept_what_they_show(clocked_app: Flask) -> None:
    auditor = _auditor(clocked_app)
    for path in ("/ui/leases", "/ui/events", "/ui/denials", "/ui/calendar"):
        page = auditor.text(path)
        assert 'type="datetime-local"' not in page and 'type="date"' not in page, path
    assert 'placeholder="YYYY-MM-DD HH:MM"' in auditor.text("/ui/events")
    shown = auditor.text("/ui/events?after=2026-12-01 08:00")  # as the field shows it, a space between
    assert 'value="2026-12-01 08:00"' in shown
    assert 'value="2026-12-13"' in auditor.text("/ui/calendar")
    refused = auditor.get("/ui/events?after=12/01/2026 08:00 AM")
    assert refused.status_code == 400 and "2026-12-01 08:00" in refused.get_data(as_text=True)


def test_the_denials_page_counts_each_refused_request_once(
    clocked_app: Flask, clock: FrozenClock, vault: OpenBaoServer
) -> None:
    clock.set(datetime.now(UTC))  # the issuer signs tokens with the real time
    with OidcIssuer() as issuer:
        broker = Broker(
            clocked_app, clocked_app.test_client(), create_broker_token(clocked_app, "admin"), issuer, vault
        )
        broker.register_issuer()
        broker.token_secret()
        broker.policy(secrets=["prod-vault-token"], runners={"environments": ["github-hosted"]})
        elsewhere = {"ref": "refs/heads/feature/x", "runner_environment": "self-hosted", "run_id": "777"}
        for _ in range(3):  # refused for two reasons each; identical, so one event and one burst summary
            response = broker.request_lease("prod-vault-token", broker.ci_token(**elsewhere))
            assert response.status_code == 403
            assert len(response.get_json()["reasons"]) == 2
        broker.request_lease("nope")  # one reason
    clock.advance(timedelta(minutes=2))  # the burst's minute has passed: its summary is written

    page = _auditor(clocked_app).text("/ui/denials")
    groups = [(re.findall(r"<code>([a-z_]+)</code>", codes), int(n)) for codes, n in GROUP.findall(page)]
    assert groups == [(["branch_not_allowed", "runner_not_allowed"], 3), (["unknown_secret"], 1)]
    assert "4 refused requests" in page
