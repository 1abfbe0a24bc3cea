from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.decision.intervals import Interval
from app.decision.ttl import BoundedBy, bound_expiry

NOW = datetime(2027, 3, 29, 8, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


def at(minutes: float) -> datetime:
    return NOW + minutes * MIN


def window_until(minutes: float | None) -> Interval:
    return Interval(NOW - timedelta(hours=1), None if minutes is None else at(minutes))


@pytest.mark.parametrize(
    ("requested", "max_end", "interval_end", "next_freeze", "expected", "bounded_by"),
    [
        pytest.param(20, 60, 120, None, 20, "requested", id="requested-wins"),
        pytest.param(90, 60, 120, None, 60, "max_ttl", id="max-ttl-wins"),
        pytest.param(90, 180, 45, None, 45, "window", id="window-wins"),
        pytest.param(90, 180, 120, 30, 30, "freeze", id="freeze-wins"),
        pytest.param(90, 180, None, None, 90, "requested", id="window-past-the-horizon-bounds-nothing"),
        pytest.param(90, 180, None, 100, 90, "requested", id="freeze-later-than-requested"),
        pytest.param(30, 30, 30, 30, 30, "requested", id="tie-all-four-prefers-requested"),
        pytest.param(60, 30, 30, 30, 30, "max_ttl", id="tie-prefers-max-ttl-over-window-and-freeze"),
        pytest.param(60, 90, 30, 30, 30, "freeze", id="tie-prefers-freeze-over-window"),
        pytest.param(20, -10, 120, None, 0, "max_ttl", id="max-end-in-the-past-yields-now"),
        pytest.param(20, 0, 120, None, 0, "max_ttl", id="max-end-now"),
        pytest.param(0, 60, 120, None, 0, "requested", id="nothing-requested"),
    ],
)
def test_bound_expiry(
    requested: float,
    max_end: float,
    interval_end: float | None,
    next_freeze: float | None,
    expected: float,
    bounded_by: BoundedBy,
) -> None:
    assert bound_expiry(
        NOW,
        requested * MIN,
        at(max_end),
        window_until(interval_end),
        None if next_freeze is None else at(next_freeze),
    ) == (at(expected), bounded_by)


def test_a_negative_request_is_a_bug() -> None:
    with pytest.raises(ValueError, match="negative"):
        bound_expiry(NOW, -MIN, at(60), window_until(None), None)
