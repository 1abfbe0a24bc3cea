"""`transom apply` reads a policy's workflows and source_networks (issue 20): a file that writes them in
another order or CIDR spelling plans no change against the server's normal form, and a bad CIDR is refused."""

from __future__ import annotations

from typing import Any

import pytest
from marshmallow import ValidationError

from app.admin.plan import normalize, normalize_current

DEPLOY = "acme/payments/.github/workflows/deploy.yml@refs/heads/main"
FILE_ENTRY: dict[str, Any] = {
    "name": "deploy-prod",
    "issuer": "github",
    "secrets": ["prod-db"],
    "repositories": ["acme/payments"],
    "branches": ["main"],
    "workflows": [DEPLOY, "acme/ci/.github/workflows/deploy.yml@refs/heads/main"],
    "source_networks": ["2001:DB8::/32", "10.1.0.0/16"],
    "windows": ["always"],
    "max_ttl": "1h",
}
SERVER_OBJECT: dict[str, Any] = {
    **FILE_ENTRY,
    "workflows": ["acme/ci/.github/workflows/deploy.yml@refs/heads/main", DEPLOY],
    "source_networks": ["10.1.0.0/16", "2001:db8::/32"],
    "runners": {"environments": [], "ids": []},
    "repository_ids": None,
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
    file_form = normalize("policies", FILE_ENTRY)
    assert file_form["source_networks"] == ["10.1.0.0/16", "2001:db8::/32"]
    assert file_form == normalize_current("policies", SERVER_OBJECT)


def test_absent_fields_restrict_nothing() -> None:
    entry = {k: v for k, v in FILE_ENTRY.items() if k not in ("workflows", "source_networks")}
    form = normalize("policies", entry)
    assert form["workflows"] is None and form["source_networks"] is None
    assert form != normalize("policies", FILE_ENTRY)  # adding them is a change the plan shows


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("source_networks", ["10.1.2.3/16"]),
        ("source_networks", ["10.0.0.0/8", "nope"]),
        ("source_networks", []),
        ("workflows", []),
        ("workflows", ["a\nb"]),
    ],
)
def test_bad_values_are_refused(field: str, value: Any) -> None:
    with pytest.raises(ValidationError) as raised:
        normalize("policies", {**FILE_ENTRY, field: value})
    assert field in raised.value.messages
