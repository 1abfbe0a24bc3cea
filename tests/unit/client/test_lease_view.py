"""The client compares lease ends as instants: the broker writes a fraction only when there is one."""

from __future__ import annotations

import pytest

from app.client.broker import LeaseView


def _view(expires_at: str) -> LeaseView:
    return LeaseView.from_json({"id": "lse_x", "expires_at": expires_at, "ttl": 60})


@pytest.mark.parametrize(
    ("renewed", "before", "moved"),
    [
        ("2026-12-06T12:00:00.500000Z", "2026-12-06T12:00:00Z", True),  # text order says the opposite
        ("2026-12-06T12:00:01Z", "2026-12-06T12:00:00.900000Z", True),
        ("2026-12-06T12:00:00Z", "2026-12-06T12:00:00.500000Z", False),
        ("2026-12-06T12:00:00Z", "2026-12-06T12:00:00Z", False),
        ("not a time", "2026-12-06T12:00:00Z", False),  # unreadable: never renewed again on a guess
        ("2026-12-06T12:00:05", "2026-12-06T12:00:00Z", False),  # no offset: not an instant
    ],
)
def test_a_renewal_moved_the_end_only_when_it_ends_later(renewed: str, before: str, moved: bool) -> None:
    assert _view(renewed).ends_after(_view(before)) is moved
