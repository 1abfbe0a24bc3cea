"""`transom apply` reads the new policy fields (repository_ids, require_protected_environment) and numeric
runner ids, and a file that writes ids as numbers plans no change against the server's strings."""

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
    "runners": {"ids": [17, "16"]},
    "repository_ids": [672013998, "100"],
    "require_protected_environment": True,
    "windows": ["always"],
    "max_ttl": "1h",
}
SERVER_OBJECT: dict[str, Any] = {
    **FILE_ENTRY,
    "runners": {"environments": [], "ids": ["16", "17"]},
    "repository_ids": ["100", "672013998"],
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


def test_ids_written_as_numbers_are_the_servers_strings() -> None:
    file_form = normalize("policies", FILE_ENTRY)
    assert file_form["repository_ids"] == ["100", "672013998"]
    assert file_form["runners"]["ids"] == ["16", "17"]
    assert file_form["require_protected_environment"] is True
    assert file_form == normalize_current("policies", SERVER_OBJECT)


def test_absent_fields_keep_their_defaults() -> None:
    entry = {
        k: v for k, v in FILE_ENTRY.items() if k not in ("repository_ids", "require_protected_environment")
    }
    form = normalize("policies", entry)
    assert form["repository_ids"] is None and form["require_protected_environment"] is False


@pytest.mark.parametrize("ids", [[], [True], [1.5], "100"])
def test_bad_repository_ids_are_refused(ids: Any) -> None:
    with pytest.raises(ValidationError) as raised:
        normalize("policies", {**FILE_ENTRY, "repository_ids": ids})
    assert "repository_ids" in raised.value.messages_dict
