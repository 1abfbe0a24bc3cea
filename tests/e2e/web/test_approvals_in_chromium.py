"""/ui/approvals in real headless Chromium: an approver judges a pending request and approves it; the
workload then claims its lease; an auditor sees the request but has nothing to press."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.web.conftest import Person, Site
from tests.e2e.web.test_pages_in_chromium import sign_in
from tests.support.broker import bearer, policy_body

pytestmark = [pytest.mark.browser, pytest.mark.vault]


def test_an_approver_approves_from_the_page_and_the_workload_claims(site: Site, person: Person) -> None:
    broker = site.broker
    body = policy_body(approval={"required": 2, "approvers": ["alice", "bob"]})
    assert broker.admin("PUT", "/v1/policies/deploy-prod", body).status_code == 200
    bob = broker.create("/v1/tokens", {"name": "bob", "role": "approver", "ci_login": "bob-gh"})["token"]
    token = broker.ci_token()
    pending = broker.request_lease("prod-vault-token", token)
    assert pending.status_code == 202
    request_id = pending.get_json()["approval"]["id"]

    sign_in(person, site, bob, "/ui/approvals")
    page = person.page
    card = page.locator(f"section#{request_id}")
    expect(card).to_contain_text("acme/payments")
    expect(card).to_contain_text("refs/heads/main")
    expect(card).to_contain_text("octocat")
    expect(card).to_contain_text("0 of 2")
    card.get_by_label("Comment").fill("reviewed the diff")
    person.screenshot("10-approvals-pending")
    card.get_by_role("button", name="Approve").click()
    expect(page.locator("p.flash")).to_contain_text(f"{request_id} is pending")
    expect(page.locator(f"section#{request_id}")).to_contain_text("1 of 2: bob")
    expect(page.locator(f"section#{request_id}")).to_contain_text("reviewed the diff")
    person.screenshot("11-approvals-one-of-two")

    # Approving twice is refused, and the page says why.
    page.locator(f"section#{request_id}").get_by_role("button", name="Approve").click()
    expect(page.locator("p.flash")).to_contain_text("already decided")

    second = broker.admin("POST", f"/v1/approvals/{request_id}/approve", {"comment": "second pair of eyes"})
    assert second.get_json()["status"] == "approved"
    page.reload()
    expect(page.locator(f"section#{request_id}")).to_have_count(0)
    claimed = broker.request_lease("prod-vault-token", token, approval=request_id)
    assert claimed.status_code == 201
    assert person.console_errors == []


def test_an_auditor_sees_requests_but_cannot_decide(site: Site, person: Person) -> None:
    broker = site.broker
    body = policy_body(approval={"required": 1})
    assert broker.admin("PUT", "/v1/policies/deploy-prod", body).status_code == 200
    request_id = broker.request_lease("prod-vault-token").get_json()["approval"]["id"]
    sign_in(person, site, site.auditor_token, "/ui/approvals")
    page = person.page
    expect(page.locator(f"section#{request_id}")).to_contain_text("acme/payments")
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    csrf = page.locator("form.signout input[name=csrf_token]").get_attribute("value")
    assert csrf
    forged = page.request.post(f"{site.url}/ui/approvals/{request_id}/approve", form={"csrf_token": csrf})
    assert "not_an_approver" in forged.text()
    without_csrf = page.request.post(f"{site.url}/ui/approvals/{request_id}/approve", form={})
    assert without_csrf.status == 400
    shown = broker.client.get(f"/v1/approvals/{request_id}", headers=bearer(site.auditor_token)).get_json()
    assert shown["status"] == "pending" and shown["approvals"] == []
