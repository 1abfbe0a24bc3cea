"""The latest instant a lease can reach, as known at issue: the token's explicit max TTL (issue 18, #7)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.decision.intervals import Interval
from app.decision.ttl import latest_reachable_end

NOW = datetime(2027, 3, 29, 8, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


@pytest.mark.parametrize(
    ("max_end", "interval_end", "next_freeze", "expected"),
    [
        pytest.param(60, 2, None, 2, id="window-ends-first"),
        pytest.param(60, 120, 30, 30, id="freeze-starts-first"),
        pytest.param(60, 120, None, 60, id="max-ttl-first"),
        pytest.param(60, None, None, 60, id="window-past-the-horizon"),
        pytest.param(60, None, 90, 60, id="freeze-after-max-ttl"),
    ],
)
def test_latest_reachable_end_is_the_earliest_bound(
    max_end: int, interval_end: int | None, next_freeze: int | None, expected: int
) -> None:
    interval = Interval(NOW - timedelta(hours=1), None if interval_end is None else NOW + interval_end * MIN)
    freeze = None if next_freeze is None else NOW + next_freeze * MIN

    assert latest_reachable_end(NOW + max_end * MIN, interval, freeze) == NOW + expected * MIN
