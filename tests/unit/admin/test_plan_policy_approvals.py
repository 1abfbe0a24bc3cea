"""`transom apply` reads a policy's approval and break_glass (issue 15): the file's spelling plans no change
against the server's normal form, a change to either is a change the plan shows, bad rules are refused."""

from __future__ import annotations

from typing import Any

import pytest
from marshmallow import ValidationError

from app.admin.plan import normalize, normalize_current

FILE_ENTRY: dict[str, Any] = {
    "name": "deploy-prod",
    "issuer": "github",
    "secrets": ["prod-db"],
    "repositories": ["acme/payments"],
    "branches": ["main"],
    "windows": ["always"],
    "max_ttl": "1h",
    "approval": {"required": 2, "approvers": ["carol", "alice", "bob"]},
    "break_glass": {"required": 2, "approvers": ["bob", "alice"], "max_ttl": "30m", "timeout": "15m"},
}
SERVER_OBJECT: dict[str, Any] = {
    **FILE_ENTRY,
    "approval": {"required": 2, "approvers": ["alice", "bob", "carol"], "timeout": 1800},
    "break_glass": {"required": 2, "approvers": ["alice", "bob"], "timeout": 900, "max_ttl": 1800},
    "runners": {"environments": [], "ids": []},
    "repository_ids": None,
    "workflows": None,
    "source_networks": None,
    "require_protected_environment": False,
    "tags": [],
    "environments": [],
    "require_protected_ref": False,
    "events": None,
    "default_ttl": 900,
    "max_ttl": 3600,
    "max_active": None,
    "created_at": "2026-12-06T10:00:00Z",
    "updated_at": "2026-12-06T10:00:00Z",
}


def test_the_files_spelling_plans_no_change_against_the_servers_normal_form() -> None:
    assert normalize("policies", FILE_ENTRY) == normalize_current("policies", SERVER_OBJECT)


@pytest.mark.parametrize(
    "change",
    [
        {"approval": None},
        {"approval": {"required": 3, "approvers": ["alice", "bob", "carol"]}},
        {"break_glass": {"required": 2, "approvers": ["alice", "bob"], "max_ttl": "1h", "timeout": "15m"}},
    ],
)
def test_a_changed_rule_is_a_change(change: dict[str, Any]) -> None:
    assert normalize("policies", {**FILE_ENTRY, **change}) != normalize_current("policies", SERVER_OBJECT)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("approval", {"required": 0}),
        ("approval", {"required": 4, "approvers": ["alice"]}),
        ("approval", {"approvers": ["alice"]}),
        ("break_glass", {"required": 1, "timeout": "1s"}),
        ("break_glass", {"required": 1, "because": "x"}),
    ],
)
def test_bad_rules_are_refused(field: str, value: Any) -> None:
    with pytest.raises(ValidationError) as raised:
        normalize("policies", {**FILE_ENTRY, field: value})
    assert field in raised.value.messages
