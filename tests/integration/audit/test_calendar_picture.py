"""The calendar picture's geometry (a pure function; here beside the page tests that draw it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.decision.intervals import Interval
from app.web.calendar_picture import LABEL_WIDTH, MAX_LANES, MIN_LEASE_WIDTH, WIDTH, LeaseBar, layout

MONDAY = datetime(2027, 3, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def _week(**policy: list[Interval]) -> dict[str, object]:
    entry = {"policy": "deploy-prod", "windows": [], "freezes": [], "open": [], **policy}
    return {"start": MONDAY, "end": MONDAY + timedelta(days=7), "policies": [entry]}


def _bar(n: int, start: datetime, length: timedelta = HOUR) -> LeaseBar:
    return LeaseBar(f"lse_{n}", "deploy-prod", start, start + length, f"lease {n}", f"/ui/leases/lse_{n}")


def test_intervals_are_placed_in_proportion_and_clipped_to_the_week() -> None:
    picture = layout(
        _week(
            windows=[Interval(MONDAY - timedelta(days=2), MONDAY + timedelta(days=1))],
            open=[Interval(MONDAY + timedelta(days=3, hours=12), None)],
            freezes=[Interval(MONDAY + timedelta(days=6), MONDAY + timedelta(days=9))],
        ),
        [],
        MONDAY + timedelta(days=3, hours=12),
    )
    day = (WIDTH - LABEL_WIDTH) / 7
    shapes = {s.kind: s for s in picture.rows[0].shapes}
    assert shapes["window"].x == LABEL_WIDTH and abs(shapes["window"].width - day) < 0.01
    assert abs(shapes["open"].x - (LABEL_WIDTH + 3.5 * day)) < 0.01
    assert abs(shapes["open"].x + shapes["open"].width - WIDTH) < 0.01  # runs past the horizon: to the edge
    assert abs(shapes["freeze"].x + shapes["freeze"].width - WIDTH) < 0.01
    assert picture.now_x is not None and abs(picture.now_x - (LABEL_WIDTH + 3.5 * day)) < 0.01
    assert [d.label for d in picture.days] == [
        "Mon 01 Mar",
        "Tue 02 Mar",
        "Wed 03 Mar",
        "Thu 04 Mar",
        "Fri 05 Mar",
        "Sat 06 Mar",
        "Sun 07 Mar",
    ]


def test_now_outside_the_week_is_not_marked() -> None:
    assert layout(_week(), [], MONDAY - timedelta(seconds=1)).now_x is None
    assert layout(_week(), [], MONDAY + timedelta(days=7)).now_x is None


def test_overlapping_leases_take_lanes_and_the_rest_are_counted() -> None:
    at = MONDAY + timedelta(days=2)
    overlapping = [_bar(n, at + n * timedelta(minutes=1)) for n in range(MAX_LANES + 3)]
    later = _bar(99, at + timedelta(days=1))  # fits in the first lane again
    picture = layout(_week(), [*overlapping, later], MONDAY)
    row = picture.rows[0]
    leases = [s for s in row.shapes if s.kind == "lease"]
    assert len({s.y for s in leases}) == MAX_LANES
    assert len(leases) == MAX_LANES + 1 and row.hidden_leases == 3
    assert leases[-1].href == "/ui/leases/lse_99" and leases[-1].y == leases[0].y


def test_a_short_lease_stays_visible_and_inside_the_picture() -> None:
    short = _bar(1, MONDAY + timedelta(days=7) - timedelta(minutes=5), timedelta(minutes=15))
    gone = _bar(2, MONDAY - timedelta(days=1))  # ended before the week: not drawn
    picture = layout(_week(), [short, gone], MONDAY)
    (lease,) = [s for s in picture.rows[0].shapes if s.kind == "lease"]
    assert lease.width == MIN_LEASE_WIDTH and lease.x + lease.width <= WIDTH
